"""systemd service units as systemd loads them, so a step can tell which settings a service really reads.

A unit is looked up as systemd does: NAME.service in the first unit directory that has it, then every
NAME.service.d/*.conf drop-in of all directories in file-name order (an /etc drop-in of the same name
wins over a packaged one). What the service starts with follows: Environment= lines, then each
EnvironmentFile= in order, then ExecStart= with `$VAR` split into words and `${VAR}` kept as one.

The files are read through the node (so under --root). Where systemd itself runs the node and the
root is /, `systemctl cat` is asked too: it also knows units in places this search does not cover
(generators, /etc/systemd/system.control) and tells which files it loaded.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wizard import flannel

if TYPE_CHECKING:
    from wizard.node import NodeLike
    from wizard.node.files import Files

# systemd's system unit search path, the parts a package or an operator writes to, highest first
# (systemd.unit(5)); /lib/systemd/system is where Debian packages put units on hosts without usrmerge.
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass
class Unit:
    """A unit as systemd loads it: the unit file with its drop-ins applied (the [Service] lines only)."""

    name: str  # "flanneld.service"
    path: str
    dropins: list[str] = field(default_factory=list)
    environment_files: list[tuple[str, bool]] = field(default_factory=list)  # (path, optional)
    environment: dict[str, str] = field(default_factory=dict)
    exec_start: str = ""
    # ExecStartPost= lines in order (flannel's package runs mk-docker-opts.sh there), each with its file
    exec_start_post: list[tuple[str, str]] = field(default_factory=list)
    # which file set each setting last: "Environment:NAME" / "ExecStart" -> path, for messages
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return [self.path, *self.dropins]

    def program(self) -> str:
        """The base name of the program ExecStart= runs (`flanneld-start`, `dockerd`), or ""."""
        try:
            words = shlex.split(self.exec_start.lstrip("-@+!:"))
        except ValueError:
            words = self.exec_start.split()
        return os.path.basename(words[0]) if words else ""

    def uses(self, variable: str) -> bool:
        """Whether ExecStart= expands $variable (or ${variable})."""
        return re.search(rf"\$(?:{re.escape(variable)}\b|\{{{re.escape(variable)}\}})", self.exec_start) is not None

    def reads(self, path: str) -> bool:
        """Whether an EnvironmentFile= of the unit is `path`."""
        return any(p == path for p, _optional in self.environment_files)

    def where(self, setting: str) -> str:
        """The file that set `setting` (as keyed in `origin`), else the unit file."""
        return self.origin.get(setting, self.path)


class MissingEnvironmentFile(Exception):
    pass


def unit_name(name: str) -> str:
    return name if "." in name.rsplit("/", 1)[-1] else f"{name}.service"


def load(files: Files, name: str) -> Unit | None:
    """NAME.service with its drop-ins, from the unit directories under the node's root; None when no
    unit file by that name exists."""
    name = unit_name(name)
    path = next((f"{d}/{name}" for d in UNIT_DIRS if files.read(f"{d}/{name}") is not None), None)
    if path is None:
        return None
    dropins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):  # the highest directory last, so its copy of a name wins
        for found in files.list(f"{directory}/{name}.d"):
            if found.endswith(".conf"):
                dropins[found.rsplit("/", 1)[1]] = found
    unit = Unit(name, path, [dropins[k] for k in sorted(dropins)])
    for source in unit.files:
        apply(unit, files.read_text(source) or "", source)
    return unit


def from_systemctl_cat(name: str, text: str) -> Unit | None:
    """A unit from `systemctl cat NAME`: each file it loaded, headed by a `# /path` line."""
    unit: Unit | None = None
    chunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# /") and (line.endswith(".service") or line.endswith(".conf")):
            chunks.append((line[2:].strip(), []))
        elif chunks:
            chunks[-1][1].append(line)
    for path, lines in chunks:
        if unit is None:
            unit = Unit(unit_name(name), path)
        else:
            unit.dropins.append(path)
        apply(unit, "\n".join(lines), path)
    return unit


def read(node: NodeLike, name: str) -> Unit | None:
    """The unit of service `name` on this node: from the files under the root, or, where systemd runs
    the node at /, as `systemctl cat` shows it."""
    if not node.simulated and os.path.abspath(node.files.root) == "/" and node.kernel.init_name() == "systemd":
        result = node.commands.run("systemctl", "cat", "--no-pager", "--", unit_name(name), timeout=10)
        if result.ok:
            found = from_systemctl_cat(name, result.out)
            if found is not None:
                return found
    return load(node.files, name)


def _lines(text: str) -> list[tuple[str, str]]:
    """(section, line) for each setting; a trailing backslash continues a line."""
    out: list[tuple[str, str]] = []
    section, pending = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            out.append((section, line))
    return out


def apply(unit: Unit, text: str, source: str = "") -> None:
    """Add one file's [Service] settings to `unit`, as systemd merges a unit file and its drop-ins."""
    source = source or unit.path
    for section, line in _lines(text):
        if section != "Service":
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if key == "EnvironmentFile":
            if not value:
                unit.environment_files.clear()  # an empty assignment resets the list
            else:
                unit.environment_files.append((value.removeprefix("-"), value.startswith("-")))
        elif key == "Environment":
            if not value:
                unit.environment.clear()
            try:
                items = shlex.split(value)
            except ValueError:
                items = value.split()
            for item in items:
                k, _, v = item.partition("=")
                unit.environment[k] = v
                unit.origin[f"Environment:{k}"] = source
        elif key == "ExecStart":
            unit.exec_start = value  # a service unit has one; an empty assignment clears it
            unit.origin["ExecStart"] = source
        elif key == "ExecStartPost":
            if not value:
                unit.exec_start_post.clear()  # an empty assignment resets the list, as for EnvironmentFile=
            else:
                unit.exec_start_post.append((value, source))


def environment(files: Files, unit: Unit, origin: dict[str, str] | None = None) -> dict[str, str]:
    """What the service starts with: Environment= lines, then each EnvironmentFile= in order. `origin`,
    when given, is filled with the file each variable came from."""
    env = dict(unit.environment)
    if origin is not None:
        origin.update({k: unit.where(f"Environment:{k}") for k in env})
    for path, optional in unit.environment_files:
        text = files.read_text(path)
        if text is None:
            if optional:
                continue
            raise MissingEnvironmentFile(path)
        found = flannel.parse_env(text)
        env.update(found)
        if origin is not None:
            origin.update(dict.fromkeys(found, path))
    return env


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Word:
    text: str
    variable: str = ""  # the $VARIABLE the word came from; "" for a word written in ExecStart= itself


def words(unit: Unit, env: dict[str, str], line: str | None = None) -> list[Word]:
    """ExecStart= (or another Exec line, `line`) as systemd expands it, each word with the variable it
    came from."""
    line = unit.exec_start if line is None else line
    try:
        raw = shlex.split(line.lstrip("-@+!:"))
    except ValueError:
        raw = line.lstrip("-@+!:").split()
    out: list[Word] = []
    for word in raw:
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            out += [Word(w, alone.group(1)) for w in env.get(alone.group(1), "").split()]
            continue
        used = [m.group(1) or m.group(2) for m in _VAR.finditer(word)]
        text = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word)
        out.append(Word(text, used[0] if len(used) == 1 and _VAR.fullmatch(word) else ""))
    return out


def command(unit: Unit, env: dict[str, str]) -> list[str]:
    """ExecStart= as systemd expands it: `$VAR` alone splits into words, `${VAR}` stays one word."""
    return [w.text for w in words(unit, env)]


def flags(args: list[str], booleans: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Go-style flags: `-name=value`, `--name value`, and `-name` alone for a boolean (which never
    takes the next word); a flag given again adds a value."""
    return {name: [w.text for w in values] for name, values in _parse([Word(a) for a in args], booleans).items()}


def flag_words(unit: Unit, env: dict[str, str], booleans: frozenset[str] = frozenset()) -> dict[str, list[Word]]:
    """Like `flags`, for ExecStart=: each flag's values with the variable (if any) they came from."""
    return _parse(words(unit, env)[1:], booleans)


def _parse(items: list[Word], booleans: frozenset[str]) -> dict[str, list[Word]]:
    """The one Go-style flag walk: a value keeps the variable its flag's word came from."""
    out: dict[str, list[Word]] = {}
    i = 0
    while i < len(items):
        word = items[i]
        i += 1
        arg = word.text
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq:
            if name not in booleans and i < len(items) and not items[i].text.startswith("-"):
                value = items[i].text
                i += 1
            else:
                value = "true"
        out.setdefault(name, []).append(Word(value, word.variable))
    return out
