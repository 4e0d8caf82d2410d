"""How dockerd gets its network settings on this node: as flags that docker.service's ExecStart= expands
from an environment file, or from its daemon.json — read from the unit as systemd starts it.

dockerd refuses to start when one setting comes both ways (`unable to configure the Docker daemon with
file …: the following directives are specified both as a flag and in the configuration file: bip: …`),
so the docker step must write each of bip, mtu and ip-masq through exactly one channel. Which one is
not the wizard's choice where a unit tells: the article's CentOS 7 node has the flannel package's
drop-in (`EnvironmentFile=-/run/flannel/docker`) and docker.service expands `$DOCKER_NETWORK_OPTIONS`,
so bip and mtu arrive as flags; Debian's docker.io expands `$DOCKER_OPTS` from /etc/default/docker,
which flannel does not write, so they belong in daemon.json.

Everything here is pure: it takes the unit and the files' bytes the step's inspect read, and the
content the step is about to write, and answers by expanding ExecStart= the way systemd would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wizard import flannel, units

if TYPE_CHECKING:
    from wizard.answers import Docker
    from wizard.node.linkinfo import Route

# the settings the docker step gives dockerd, by their flag names (also their daemon.json keys)
SETTINGS = ("bip", "mtu", "ip-masq")
# where flannel writes docker's options: the flannel package's ExecStartPost= (its docker drop-in reads
# it), and mk-docker-opts.sh's default -d. An env file the operator keeps (/etc/default/docker,
# /etc/sysconfig/docker) is never taken over: the opts file is rewritten whole.
FLANNEL_OPTS_FILES = ("/run/flannel/docker", "/run/docker_opts.env")
DEFAULT_OPTS_FILE = "/run/docker_opts.env"
# the combined variable: the flannel package's -k, then mk-docker-opts.sh's default
KNOWN_KEYS = ("DOCKER_NETWORK_OPTIONS", "DOCKER_OPTS")
DEFAULT_KEY = "DOCKER_OPTS"
INDIVIDUAL = {"bip": "DOCKER_OPT_BIP", "mtu": "DOCKER_OPT_MTU", "ip-masq": "DOCKER_OPT_IPMASQ"}
DEFAULT_CONFIG = "/etc/docker/daemon.json"  # dockerd's --config-file default on Linux
# dockerd 20.10's boolean flags: `--ip-masq` alone never takes the next word as its value
BOOLEANS = frozenset({"ip-masq", "iptables", "ip6tables", "ip-forward", "icc", "debug", "D", "live-restore",
                      "selinux-enabled", "userland-proxy", "experimental", "tls", "tlsverify", "ipv6", "init",
                      "no-new-privileges", "raw-logs", "rootless", "help", "h", "version", "v"})


@dataclass(frozen=True)
class Source:
    """One value dockerd gets as a flag, and where it comes from."""

    value: str
    variable: str  # the $VARIABLE ExecStart= expands; "" when the flag is written in ExecStart= itself
    file: str  # the file that set that variable (or, for a literal flag, the file with ExecStart=)

    def where(self) -> str:
        if self.variable:
            return f"${self.variable} from {self.file}"
        return f"ExecStart= in {self.file}"


@dataclass
class Channels:
    """The docker step's channels on this node: the opts file it writes (and its combined variable),
    the daemon.json dockerd reads, and each setting's flags as dockerd would get them."""

    opts_file: str
    combined_key: str
    content: str  # the opts file as the step writes it (mk-docker-opts.sh's format)
    config_file: str  # the daemon.json dockerd reads
    config_from: str = ""  # where --config-file names it (Source.where); "" for dockerd's default
    flags: dict[str, list[Source]] = field(default_factory=dict)  # setting -> its flags, ours included
    problems: list[tuple[str, str]] = field(default_factory=list)  # (what, fix): the step must not go on
    why: str = ""  # how the unit gives dockerd flannel's file as flags, for the plan
    format: MkDockerOpts = field(default_factory=lambda: MkDockerOpts())  # the flags the opts file is written with
    flanneld: MkDockerOpts | None = None  # flanneld's ExecStartPost= run that rewrites the same file

    def ours(self, setting: str) -> bool:
        """Whether `setting` reaches dockerd as a flag from the opts file the step writes."""
        return any(s.file == self.opts_file and s.variable for s in self.flags.get(setting, []))

    def others(self, setting: str) -> list[Source]:
        """Flags for `setting` that do not come from the opts file (another env file, ExecStart= itself)."""
        return [s for s in self.flags.get(setting, []) if not (s.file == self.opts_file and s.variable)]

    @property
    def as_flags(self) -> list[str]:
        return [s for s in SETTINGS if self.flags.get(s)]


SCRIPT = "mk-docker-opts.sh"
DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"


@dataclass(frozen=True)
class MkDockerOpts:
    """One run of mk-docker-opts.sh in flanneld's ExecStartPost=: the file flanneld itself rewrites at
    every start, and the flags that decide its bytes (the script's defaults where a flag is absent)."""

    file: str = DEFAULT_OPTS_FILE  # -d
    key: str = DEFAULT_KEY  # -k
    individual: bool = True  # -i, or neither -i nor -c
    combined: bool = True  # -c, or neither -i nor -c
    ip_masq: bool = True  # false: -m
    subnet_file: str = DEFAULT_SUBNET_FILE  # -f
    inherited: str = ""  # $KEY in flanneld's environment, which the script puts before the options
    line: str = ""  # the ExecStartPost= value, for messages
    source: str = ""  # the unit file or drop-in that holds it

    def flags(self) -> str:
        """The flags that shape the file's bytes, as the script reads them: `-k DOCKER_NETWORK_OPTIONS -m`."""
        parts = [f"-k {self.key}" if self.key != DEFAULT_KEY else ""]
        if self.individual != self.combined:
            parts.append("-i" if self.individual else "-c")
        parts.append("" if self.ip_masq else "-m")
        return " ".join(p for p in parts if p) or "no flags"

    def lines(self) -> str:
        """What it writes, in words: `$DOCKER_NETWORK_OPTIONS and the DOCKER_OPT_* lines, with --ip-masq`."""
        what = [f"${self.key}" if self.combined else "", "the DOCKER_OPT_* lines" if self.individual else ""]
        return " and ".join(w for w in what if w) + (", with --ip-masq" if self.ip_masq else ", without --ip-masq (-m)")


def getopts(args: list[str], spec: str) -> dict[str, str] | None:
    """The options of a shell script's `getopts SPEC` loop: `-ic`, `-k KEY` and `-kKEY` alike, up to the
    first word that is not an option (or `--`); None when getopts would reach its usage branch."""
    takes = {spec[i] for i in range(len(spec) - 1) if spec[i + 1] == ":"}
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            opt = arg[j]
            j += 1
            if opt not in spec or opt == ":":
                return None
            if opt in takes:
                if j < len(arg):
                    value = arg[j:]
                elif i < len(args):
                    value, i = args[i], i + 1
                else:
                    return None
                found[opt] = value
                break
            found[opt] = "true"
    return found


def flanneld_writes(unit: units.Unit | None, env: Mapping[str, str]) -> list[MkDockerOpts]:
    """Each mk-docker-opts.sh run in `unit`'s ExecStartPost= (flanneld's), its words expanded with `env`
    (flanneld's environment) as systemd would. A run the script would refuse (a bad flag) writes nothing."""
    if unit is None:
        return []
    found: list[MkDockerOpts] = []
    for line, source in unit.exec_start_post:
        words = [w.text for w in units.words(unit, dict(env), line)]
        if not words or os.path.basename(words[0]) != SCRIPT:
            continue
        opts = getopts(words[1:], "f:d:icmk:?h")
        if opts is None or "?" in opts or "h" in opts:
            continue
        individual, combined = "i" in opts, "c" in opts
        if not individual and not combined:
            individual = combined = True
        key = opts.get("k", DEFAULT_KEY)
        found.append(MkDockerOpts(opts.get("d", DEFAULT_OPTS_FILE), key, individual, combined, "m" not in opts,
                                  opts.get("f", DEFAULT_SUBNET_FILE), env.get(key, ""), line, source))
    return found


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode(errors="replace")


def expand(unit: units.Unit, files: Mapping[str, bytes | None], planned: Mapping[str, str] | None = None,
           ) -> tuple[dict[str, list[units.Word]], dict[str, str], list[str]]:
    """ExecStart='s flags as systemd would start dockerd, with `planned` files in place of what is there:
    (flag -> words, variable -> the file that set it last, required environment files that are missing)."""
    planned = planned or {}
    env = dict(unit.environment)
    origin = {k: unit.where(f"Environment:{k}") for k in env}
    missing: list[str] = []
    for path, optional in unit.environment_files:
        text = planned.get(path, _text(files.get(path)))
        if text is None:
            if not optional:
                missing.append(path)
            continue
        found = flannel.parse_env(text)
        env.update(found)
        origin.update(dict.fromkeys(found, path))
    return units.flag_words(unit, env, BOOLEANS), origin, missing


def flag_sources(unit: units.Unit, files: Mapping[str, bytes | None], planned: Mapping[str, str] | None = None,
                 ) -> tuple[dict[str, list[Source]], dict[str, list[units.Word]], list[str]]:
    """Each of SETTINGS as dockerd would get it as flags (with where each came from); all flags' words;
    the required environment files that are missing."""
    words, origin, missing = expand(unit, files, planned)
    return {s: _sourced(unit, words.get(s, []), origin) for s in SETTINGS}, words, missing


def _sourced(unit: units.Unit, found: list[units.Word], origin: Mapping[str, str]) -> list[Source]:
    literal = unit.where("ExecStart")
    return [Source(w.text, w.variable, origin.get(w.variable, literal) if w.variable else literal) for w in found]


def _sources(unit: units.Unit, files: Mapping[str, bytes | None], planned: Mapping[str, str], flag: str) -> list[Source]:
    words, origin, _missing = expand(unit, files, planned)
    return _sourced(unit, words.get(flag, []), origin)


def _delivers(unit: units.Unit, files: Mapping[str, bytes | None], path: str, content: str) -> bool:
    """Whether `content` at `path` gives dockerd --bip: the unit reads the file, ExecStart= expands a
    variable it sets, and no later file sets that variable again."""
    if not unit.reads(path):
        return False
    found, _words, _missing = flag_sources(unit, files, {path: content})
    return any(s.file == path and s.variable for s in found["bip"])


def _probe(key: str) -> str:
    """An opts file with every line mk-docker-opts.sh may write: for asking the unit what it reads."""
    return flannel.mk_docker_opts({"FLANNEL_SUBNET": "10.0.0.1/24", "FLANNEL_MTU": "1450", "FLANNEL_IPMASQ": "false"},
                                  True, True, key)


def _unit_channel(unit: units.Unit, files: Mapping[str, bytes | None]) -> tuple[str, str] | None:
    """The flannel opts file and combined variable through which this unit gives dockerd its flags:
    a flannel file it reads whose variable its ExecStart= expands; None when it has none."""
    for path, _optional in reversed(unit.environment_files):  # a later file wins, as in systemd
        if path not in FLANNEL_OPTS_FILES:
            continue
        now = flannel.parse_env(_text(files.get(path)) or "")
        keys = [k for k in now if unit.uses(k) and not k.startswith("DOCKER_OPT_")]
        for key in [*keys, *(k for k in KNOWN_KEYS if k not in keys)]:
            if _delivers(unit, files, path, _probe(key)):
                return path, key
    return None


def _format(docker: Docker, key: str, post: MkDockerOpts | None) -> tuple[MkDockerOpts, list[str]]:
    """The flags the wizard writes the opts file with, and the answers that contradict flanneld's run of
    the script on that file. The three booleans have no `auto`: their default (true: the script without
    -i/-c/-m) follows flanneld's flags, and false is the operator's choice, a conflict where flanneld's
    run differs."""
    opts = docker.opts
    if post is None:
        return MkDockerOpts(key=key, individual=opts.individual, combined=opts.combined, ip_masq=opts.ip_masq), []
    wrong: list[str] = []
    if key != post.key:
        wrong.append(f"docker.opts.combined_key: {post.key}")
    chosen = {"individual": opts.individual, "combined": opts.combined, "ip_masq": opts.ip_masq}
    theirs = {"individual": post.individual, "combined": post.combined, "ip_masq": post.ip_masq}
    for name, value in chosen.items():
        if not value and theirs[name]:
            wrong.append(f"docker.opts.{name}: true")
    fmt = MkDockerOpts(post.file, key, post.individual, post.combined, post.ip_masq, post.subnet_file, post.inherited,
                       post.line, post.source)
    return fmt, wrong


def resolve(docker: Docker, unit: units.Unit | None, files: Mapping[str, bytes | None],
            render: Callable[[MkDockerOpts], str], posts: tuple[MkDockerOpts, ...] | list[MkDockerOpts] = ()) -> Channels:
    """The channels for these answers on this unit. `render(fmt)` is the opts file the step writes with
    those mk-docker-opts.sh flags (its output for the lease, or an example). `posts` are the script's runs
    in flanneld's ExecStartPost=: flanneld rewrites those files at every start, so `auto` follows them and
    answers that contradict them fail."""
    auto_file, auto_key = docker.opts_file == "auto", docker.opts.combined_key == "auto"
    post_of = {p.file: p for p in posts}  # the last run that writes a file decides its bytes
    found = _unit_channel(unit, files) if unit is not None else None
    # auto: the file docker's unit reads as flags, else the one flanneld writes, else the script's default
    path = docker.opts_file if not auto_file else (found[0] if found else posts[-1].file if posts else DEFAULT_OPTS_FILE)
    post = post_of.get(path)
    key = docker.opts.combined_key if not auto_key else (
        post.key if post else found[1] if found and found[0] == path else DEFAULT_KEY)
    fmt, wrong = _format(docker, key, post)
    content = render(fmt)
    problems = _flanneld_problems(docker, path, key, post, posts, wrong)  # after the unit's own, below
    if unit is None:
        config = docker.daemon_json or DEFAULT_CONFIG
        return Channels(path, key, content, config, problems=problems, format=fmt, flanneld=post)
    sources, words, missing = flag_sources(unit, files, {path: content})
    configs = _sources(unit, files, {path: content}, "config-file")
    config = configs[-1].value if configs else DEFAULT_CONFIG
    result = Channels(path, key, content, config, configs[-1].where() if configs else "", sources,
                      format=fmt, flanneld=post)
    if found:
        where = unit.where("ExecStart")
        result.why = (f"{unit.name} reads {found[0]} (EnvironmentFile=) and its ExecStart= (in {where}) expands "
                      f"${found[1]}")
    for gone in missing:
        if gone != path:
            result.problems.append((f"{unit.name} needs {gone} (EnvironmentFile= without '-'), which does not exist: "
                                    f"systemd would not start it", f"create {gone}, or make the line "
                                    f"EnvironmentFile=-{gone} in {unit.name}"))
    if found and not result.ours("bip"):
        # the unit passes flannel's file as flags, and flanneld's ExecStartPost= rewrites it at each start:
        # what the answers make must reach dockerd there, or the step would put bip into daemon.json and
        # the next mk-docker-opts.sh run would give it as a flag too
        wanted = [f"docker.opts_file: {found[0]}" if path != found[0] else "",
                  f"docker.opts.combined_key: {found[1]}" if key != found[1] else ""]
        if docker.opts.individual and not docker.opts.combined and not unit.uses(INDIVIDUAL["bip"]):
            wanted.append("docker.opts.combined: true")
        fix = " and ".join(w for w in wanted if w) or "docker.opts_file and docker.opts.combined_key"
        theirs = post_of.get(found[0])
        if theirs is not None and theirs.key != found[1]:
            # flanneld rewrites that file with another variable at every start: no answer can fix it
            result.problems.append((
                f"{result.why}, but flanneld's ExecStartPost rewrites {found[0]} at every restart with "
                f"${theirs.key} (`{theirs.line}` in {theirs.source}): dockerd never gets flannel's options",
                f"make them agree: -k {found[1]} in flanneld's ExecStartPost=, or ${theirs.key} in {unit.name}'s "
                "ExecStart= (a drop-in), then run the wizard again"))
            return result
        said = ", ".join(s for s, explicit in ((f"docker.opts_file: {docker.opts_file}", not auto_file),
                                                 (f"docker.opts.combined_key: {key}", not auto_key)) if explicit)
        result.problems.append((
            f"{result.why}: dockerd takes its network options from there as flags, and what the wizard would "
            f"write ({said or 'with these docker.opts'}) does not reach it", f"set {fix} (or auto, which follows the unit)"))
    result.problems += problems
    return result


def _flanneld_problems(docker: Docker, path: str, key: str, post: MkDockerOpts | None,
                       posts: tuple[MkDockerOpts, ...] | list[MkDockerOpts], wrong: list[str]) -> list[tuple[str, str]]:
    """Answers that flanneld's ExecStartPost= would undo at its next restart: the same file written with
    other flags, or the same variable written into another file."""
    out: list[tuple[str, str]] = []
    if post is not None and wrong:
        out.append((f"flanneld's ExecStartPost rewrites {post.file} at every restart with {post.lines()} "
                    f"(`{post.line}` in {post.source}), so what the answers would write there lasts only until "
                    "flanneld restarts", f"set {' and '.join(wrong)} (the defaults follow flanneld's unit)"))
    if post is None and docker.opts_file != "auto":
        for other in posts:
            if other.key == key and other.combined:
                out.append((f"flanneld's ExecStartPost rewrites {other.file} at every restart with ${key} "
                            f"(`{other.line}` in {other.source}), and docker.opts_file: {path} would hold another "
                            f"${key}: two files give dockerd's options, and only flanneld's is kept up to date",
                            f"set docker.opts_file: {other.file} (or auto, which follows flanneld's unit)"))
                break
    return out


# flags whose daemon.json key is another word: docker's list-valued ("named") options, and short flags by
# their long name. dockerd compares a flag given on its command line with the key of that name.
JSON_KEYS = {"H": "hosts", "host": "hosts", "D": "debug", "b": "bridge", "l": "log-level", "G": "group",
             "p": "pidfile", "g": "graph", "authorization-plugin": "authorization-plugins", "dns-opt": "dns-opts",
             "label": "labels", "log-opt": "log-opts", "exec-opt": "exec-opts", "storage-opt": "storage-opts",
             "insecure-registry": "insecure-registries", "registry-mirror": "registry-mirrors",
             "cluster-store-opt": "cluster-store-opts", "default-address-pool": "default-address-pools",
             "node-generic-resource": "node-generic-resources", "default-ulimit": "default-ulimits"}
# given both ways, these are merged rather than refused (dockerd 20.10 accepts --add-runtime with "runtimes")
MERGED = frozenset({"add-runtime"})


def given_twice(unit: units.Unit, files: Mapping[str, bytes | None], planned: Mapping[str, str],
                data: Mapping[str, object]) -> list[tuple[str, Source]]:
    """(daemon.json key, the flag) for each setting dockerd would get both as a flag and from `data`
    (its config file): dockerd refuses to start then."""
    words, origin, _missing = expand(unit, files, planned)
    out = []
    for name, found in words.items():
        key = JSON_KEYS.get(name, name)
        if name in MERGED or key not in data or not found:
            continue
        out.append((key, _sourced(unit, found, origin)[-1]))
    return out

# ---------------------------------------------------------------- mk-docker-opts.sh's route check


def route_line(route: Route) -> str:
    """A route as `ip route show` prints its first words: `default`, a host route without /32."""
    dst = route.dst
    text = "default" if dst.prefixlen == 0 else str(dst.network_address) if dst.prefixlen == 32 else str(dst)
    return text + (f" via {route.gateway}" if route.gateway else "") + (f" dev {route.dev}" if route.dev else "")


def script_subnet(flannel_subnet: str) -> str:
    """What mk-docker-opts.sh greps for: FLANNEL_SUBNET with its last octet minus one, its length kept
    (`cut -d. -f4 | cut -d/ -f1`, `$((x-1))`), so 172.30.46.1/24 gives 172.30.46.0/24."""
    head, _, length = flannel_subnet.partition("/")
    octets = head.split(".")
    try:
        last = int(octets[3]) - 1
    except (IndexError, ValueError):
        return ""
    return f"{'.'.join(octets[:3])}.{last}/{length or flannel_subnet}"


def refused_routes(flannel_subnet: str, routes: list[Route]) -> list[str]:
    """The lines of `ip route show` for which mk-docker-opts.sh exits 1 (`ip route show | grep
    SUBNET | grep via`): the grep is a basic regular expression, so each '.' matches any character,
    and the match may be anywhere in a line that also says `via` somewhere. A wider route via a gateway
    (172.30.0.0/16 via …) does not match; a multipath route does not either (its `via` words are on the
    nexthop lines, without the subnet)."""
    wanted = script_subnet(flannel_subnet)
    if not wanted:
        return []
    pattern = re.compile("".join("." if ch == "." else re.escape(ch) for ch in wanted))
    return [line for line in map(route_line, routes) if pattern.search(line) and "via" in line]
