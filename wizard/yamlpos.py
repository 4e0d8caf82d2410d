"""Load YAML while remembering where every key and value stands, for FILE:LINE:COL messages.

The input is untrusted: a file handed to a tool that runs as root. PyYAML's composer builds a graph
in which an alias is the anchored node itself (no copy), so a billion-laughs file composes quickly;
it is turning that graph into data — this module's walk, and everything after it — that expands
every alias. So the limits sit in two places: while composing (nesting depth, number of nodes,
which also bounds the time the pure-Python parser spends) and while walking (the values the aliases
expand to, aliases that refer to themselves). Every way the loader can fail becomes a YamlSyntaxError
with a position and a fix, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

# An answers file is a few dozen values, four levels deep; these leave a wide margin and still keep
# a hostile file to milliseconds.
MAX_DEPTH = 64  # nested collections, in the file and after expanding aliases
MAX_NODES = 10_000  # values (keys included) in the file
MAX_VALUES = 10_000  # values after expanding aliases
MAX_INT_BITS = 14_000  # about 4200 decimal digits: below Python's limit on int <-> str conversion

_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _tag(tag: str) -> str:
    short = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag
    return short if len(short) <= 40 else short[:30] + "…"


@dataclass(frozen=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Located:
    data: Any
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)
    duplicates: list[tuple[Path, Pos]] = field(default_factory=list)

    def where(self, path: Path, key: bool = False) -> Pos:
        """The position of `path`, or of its nearest ancestor that the file has."""
        table = self.keys if key else self.values
        for n in range(len(path), -1, -1):
            if path[:n] in table:
                return table[path[:n]]
            if path[:n] in self.values:
                return self.values[path[:n]]
        return Pos(1, 1)


class YamlSyntaxError(Exception):
    """`message` says what is wrong, `fix` how to fix it; rendered `what — fix` at `pos`."""

    def __init__(self, pos: Pos, message: str, fix: str = "fix the YAML here") -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}"


def _pos(mark: yaml.Mark) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


def position(text: str, index: int) -> Pos:
    """Line and column (1-based) of the character at `index`."""
    start = text.rfind("\n", 0, index) + 1
    return Pos(text.count("\n", 0, index) + 1, index - start + 1)


_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "ESC", 0x7F: "DEL"}


def describe_char(ch: str) -> str:
    code = ord(ch)
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X} ({name})" if name else f"U+{code:04X}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts while it composes, and remembers where each alias was written."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.nodes = 0
        # (id(parent node), ordinal of the child within it) -> (position of `*name`, name)
        self.aliases: dict[tuple[int, int], tuple[Pos, str]] = {}
        self._children: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if parent is not None:
            ordinal = self._children.get(id(parent), 0)
            self._children[id(parent)] = ordinal + 1
            if isinstance(event, yaml.AliasEvent):
                self.aliases[(id(parent), ordinal)] = (_pos(event.start_mark), str(event.anchor))
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlSyntaxError(_pos(event.start_mark), f"the file holds more than {MAX_NODES} values",
                                  "an answers file holds a few dozen; give the answers file itself")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise YamlSyntaxError(_pos(event.start_mark), f"nesting deeper than {MAX_DEPTH} levels",
                                      "answers nest only a few levels (section, key, list); remove the extra brackets")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1


def load(text: str) -> Located:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks every character at once: the reader may refuse here
        node = loader.get_single_node()
        located = Located(None)
        if node is not None:
            located.data = _Walk(loader, located).value(node, ())
        return located
    except YamlSyntaxError:
        raise
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow (NUL, other control characters, U+FFFE, ...)
        where = position(text, exc.position) if isinstance(exc.position, int) and exc.position <= len(text) else Pos(1, 1)
        what = describe_char(chr(exc.character)) if isinstance(exc.character, int) else repr(exc.character)
        raise YamlSyntaxError(where, f"character {what} is not allowed in YAML",
                              "remove it; an answers file is text (binary data and control characters do not belong in it)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _pos(mark) if mark else Pos(1, 1)
        problem = exc.problem or exc.context or "not valid YAML"
        context = exc.context or ""
        fix = "fix the YAML here"
        if "'\\t'" in problem:
            fix = "indent with spaces: YAML does not allow tabs there"
        elif "expected a single document" in context:
            fix = "an answers file is one document; remove the second `---` and what follows"
        elif "duplicate anchor" in context:
            problem = f"{context.split(';')[0]} (defined twice)"
            fix = "rename one of them"
        elif problem.startswith("could not determine a constructor for the tag"):
            tag = problem.rsplit(" ", 1)[-1].strip("'")
            raise YamlSyntaxError(pos, f"the tag {_tag(tag)} is not used in answers files",
                                  "remove it; write the value plainly") from None
        raise YamlSyntaxError(pos, f"YAML syntax error: {problem}", fix) from None
    except (ValueError, OverflowError, UnicodeError) as exc:
        # PyYAML lets a few through unwrapped, e.g. "\U0011FFFF" (chr() out of range) in the scanner
        where = _pos(loader.get_mark()) if loader is not None else Pos(1, 1)
        if "chr()" in str(exc):
            raise YamlSyntaxError(where, "YAML syntax error: an escape names a character beyond U+10FFFF") from None
        raise YamlSyntaxError(where, f"YAML syntax error: {exc}") from None
    except RecursionError:  # not reachable within MAX_DEPTH; kept so that no input ever shows a traceback
        raise YamlSyntaxError(Pos(1, 1), "the file nests too deeply to read", "remove the extra nesting") from None
    finally:
        if loader is not None:
            loader.dispose()


class _Walk:
    """Turns the composed graph into data with positions, expanding aliases within a budget."""

    def __init__(self, loader: _Loader, out: Located) -> None:
        self.loader = loader
        self.out = out
        self.count = 0
        self.open: set[int] = set()  # collections being walked: an alias to one of them is a loop
        self.via: list[tuple[Pos, str]] = []  # the aliases followed to get here, outermost first

    def _alias(self, parent: yaml.Node, ordinal: int) -> tuple[Pos, str] | None:
        return self.loader.aliases.get((id(parent), ordinal))

    def _limit(self, node: yaml.Node, what: str, fix: str) -> YamlSyntaxError:
        if self.via:
            pos, name = self.via[0]
            return YamlSyntaxError(pos, f"alias *{name} {what}", fix)
        return YamlSyntaxError(_pos(node.start_mark), what, fix)

    def _count(self, node: yaml.Node, depth: int) -> None:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self._limit(node, f"expands to more than {MAX_VALUES} values",
                              "answers need no aliases that repeat other aliases; write the values out")
        if depth > MAX_DEPTH:
            raise self._limit(node, f"nests deeper than {MAX_DEPTH} levels once expanded",
                              "write the values out instead of nesting aliases")

    def _child(self, parent: yaml.Node, ordinal: int, node: yaml.Node, path: Path, depth: int, key: bool = False) -> Any:
        alias = self._alias(parent, ordinal)
        if alias is not None:
            if id(node) in self.open:
                pos, name = alias
                raise YamlSyntaxError(pos, f"alias *{name} refers to the collection it is in, which would never end",
                                      f"remove *{name} here, or anchor a value that does not contain it")
            self.via.append(alias)
        try:
            return self._key(node, depth) if key else self.value(node, path, depth)
        finally:
            if alias is not None:
                self.via.pop()

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
            if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
                # hex and octal escape Python's 4300-digit limit on reading, not on printing
                raise ValueError("too long")
            return value
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as exc:
            # e.g. an integer over Python's 4300-digit limit, or a date like 2024-13-45
            text = str(node.value)
            shown = text if len(text) <= 40 else f"{text[:20]}…{text[-10:]} ({len(text)} characters)"
            if node.tag.endswith(":int"):
                what, fix = f"the number {shown} is too long to read", "numbers in an answers file are small; check this value"
            elif node.tag.endswith(":timestamp"):
                what, fix = f"'{shown}' looks like a date but is not a valid one", "quote it if it is meant as text"
            else:
                what, fix = f"cannot read the value {shown}: {exc}", "quote it if it is meant as text"
            raise YamlSyntaxError(_pos(node.start_mark), what, fix) from None

    def _key(self, node: yaml.Node, depth: int) -> str | int:
        self._count(node, depth)
        if node.tag == "tag:yaml.org,2002:merge":
            raise YamlSyntaxError(_pos(node.start_mark), "merge keys (<<) are not used in answers files",
                                  "write the keys out in this section")
        if not isinstance(node, yaml.ScalarNode):
            raise YamlSyntaxError(_pos(node.start_mark), "a list or mapping is used as a key",
                                  "keys in an answers file are plain names such as `etcd:`")
        key = self._scalar(node)
        return key if isinstance(key, str | int) else str(key)

    def value(self, node: yaml.Node, path: Path, depth: int = 1) -> Any:
        self._count(node, depth)
        self.out.values[path] = _pos(node.start_mark)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in (_MAP, _SEQ):
            # the walk reads collections itself, so it refuses the tags the constructor would have read
            raise YamlSyntaxError(_pos(node.start_mark), f"the tag {_tag(node.tag)} is not used in answers files",
                                  "remove it; write a plain mapping or list")
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            try:
                result: dict[Any, Any] = {}
                for i, (key_node, value_node) in enumerate(node.value):
                    key = self._child(node, 2 * i, key_node, path, depth + 1, key=True)
                    child = (*path, key)
                    if key in result:
                        self.out.duplicates.append((child, _pos(key_node.start_mark)))
                    self.out.keys[child] = _pos(key_node.start_mark)
                    result[key] = self._child(node, 2 * i + 1, value_node, child, depth + 1)
                return result
            finally:
                self.open.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            try:
                return [self._child(node, i, item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        return self._scalar(node)
