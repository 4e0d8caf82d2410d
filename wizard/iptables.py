"""kube-proxy's iptables rules: parse `iptables-save` text and trace a service's path to its pods.

The path is followed by jumps and rule comments, the way seed-procedure §5 reads it, never by
recomputing kube-proxy's chain hashes: KUBE-SERVICES (cluster IP:port) -> KUBE-SVC-… -> KUBE-SEP-…
(picked with -m statistic probability) -> DNAT pod:port, and the node-port branch from
KUBE-NODEPORTS (through KUBE-EXT-… on newer kube-proxy). Works on any iptables-save text, live or
saved on another node.

A cluster's nat table holds hundreds of thousands of rules and a trace visits a dozen, so `parse`
splits no rule into words: it checks every line of the text with whole-text passes (str and bytes
methods, a regex with a literal prefix: C loops, no Python per line), notes where each table's block
begins and ends, and keeps the text. A chain's rules are found, split and kept when first asked for,
with one pass over the text for all the chains a rule jumps to. Text those passes cannot vouch for
(tabs, carriage returns, backslashes, odd quoting, anything malformed) is read line by line as before,
which also gives the exact error. Whatever asks for every rule (`all_rules`, `chains`, `policies`,
`service_ports`) gets every rule split once, by the same line-by-line reader.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from wizard.proxypath import Branch, Endpoint, NotListing, Path, Refusal, ServicePort, host_port

JUMP_CHAINS = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")
FOLLOWED = ("KUBE-SEP-", *JUMP_CHAINS)  # the chains a trace reads the rules of
# iptables-save quotes a word with "…" (inner quotes as \") and leaves the rest bare; a regex
# splits a rule 10x faster than shlex, which matters on a nat table of thousands of services
_WORD = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_UNESCAPE = re.compile(r"\\(.)")


def split_rule(line: str) -> list[str]:
    if '"' not in line:
        return line.split()
    parts = line.split('"')
    if "\\" not in line and len(parts) % 2:
        # without escapes, paired quotes cut the line into bare and quoted parts (as _WORD reads it) as
        # long as every opening quote starts a word: _WORD's bare \S+ swallows a quote after a letter
        words: list[str] = []
        last = len(parts) - 1
        for i, part in enumerate(parts):
            if i % 2:
                words.append(part)
                continue
            if i < last and part and not part[-1].isspace():
                break
            words += part.split()
        else:
            return words
    words = []
    for quoted, bare in _WORD.findall(line):
        words.append(_UNESCAPE.sub(r"\1", quoted) if bare == "" else bare)
    return words


class NotIptablesSave(NotListing):
    """Not iptables-save output."""


class CutOff(NotIptablesSave):
    """iptables-save output that stops inside a table (no COMMIT line): a copy cut short, a transfer
    that broke off. What is missing may be the very rules asked about, so it is refused, not traced."""


@dataclass(slots=True)  # slots: --list splits every rule of the table, a dict each would double it
class Rule:
    table: str
    chain: str
    args: list[str]
    line: int
    packets: int | None = None  # with iptables-save -c

    def option(self, *names: str) -> str | None:
        """The word after the first of `names`. `in` and list.index are C loops (a rule's target and
        comment are asked for every rule of --list); an exception per name missing would cost more."""
        args = self.args
        best = len(args) - 1  # the last word has no value after it
        for name in names:
            if name in args:
                best = min(best, args.index(name))
        return args[best + 1] if best < len(args) - 1 else None

    @property
    def target(self) -> str:
        return self.option("-j", "--jump") or ""

    @property
    def comment(self) -> str:
        return self.option("--comment") or ""


@dataclass(frozen=True, slots=True)
class _Block:
    """One table of the text: from the line after `*table` to its COMMIT line (offsets)."""

    table: str
    start: int
    end: int


# every line of a block is a rule, a chain, a comment or empty: any other line, and *table and COMMIT,
# is "special" and looked at in Python (a handful in a whole dump); `\n` first, so the regex engine
# jumps from newline to newline
_SPECIAL = re.compile(r'\n(?!-A [^\s"]|\[[0-9]+:[0-9]+\] -A [^\s"]|:\S|#|\n|\Z)')
# what the whole-text check keeps of each line: quotes (counted per line) and newlines; and what hands
# the text to the line-by-line reader: a backslash (an escape), whitespace other than a space (the
# chain lookups match `-A NAME ` with one space), line breaks other than \n (splitlines counts them)
_WATCHED = b'"\n\\\t\r\x0b\x0c\x1c\x1d\x1e\x1f'
_UNWATCHED = bytes(c for c in range(128) if c not in _WATCHED)
_COUNTERS = re.compile(r"\[[0-9]+:[0-9]+\] ")
_RULE_OR_CHAIN = re.compile(r"\n[-:\[]")
# lazy look-ups each cost a pass over the text: past this many, splitting every rule once is cheaper
LAZY_PASSES = 24


def _blocks(text: str) -> list[_Block] | None:
    """The tables of `text` when every line of it is one the careful reader (`_read_all`) accepts and
    each rule can be found by `-A CHAIN `; None when that cannot be told in whole-text passes."""
    if not text.isascii():  # O(1) on str; the decoder's replacement characters come here too
        return None
    kept = text.encode("ascii").translate(None, _UNWATCHED)
    if kept.count(b"\n") != len(kept.replace(b'""', b"")):  # something watched, or an odd quote on a line
        return None
    first_end = text.find("\n")
    first = text if first_end == -1 else text[:first_end]
    # one at a time: text that is no dump at all (a log) stops at its first line, not after a list of all
    starts = itertools.chain([0] if _SPECIAL.match("\n" + first) else [],
                             (m.start() + 1 for m in _SPECIAL.finditer(text)))
    blocks: list[_Block] = []
    table: str | None = None
    begin = outside = 0  # where the open table's rules begin; where the text outside tables resumes
    for start in starts:
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        line = text[start:end].strip()
        if line.startswith("*") and table is None and line[1:].strip() and _only_comments(text[outside:start]):
            table, begin = line[1:].strip(), end + 1
        elif line == "COMMIT" and table is not None:
            blocks.append(_Block(table, begin, start))
            table, outside = None, end
        else:  # a table inside a table, a COMMIT outside one, a line no iptables-save writes
            return None
    if table is not None or not _only_comments(text[outside:]):
        return None
    return blocks


def _only_comments(text: str) -> bool:
    return all(not line or line.startswith("#") for line in text.split("\n"))


class Ruleset:
    """Rules by (table, chain). From `parse`, a chain's rules are split when first asked for (`rules`,
    `load`, `containing`); `chains`, `policies` and `all_rules` split all of them, once."""

    def __init__(self, text: str = "", blocks: list[_Block] | None = None) -> None:
        self._text = text
        self._blocks = blocks or []
        self._starts = [b.start for b in self._blocks]
        self._loaded: dict[tuple[str, str], list[Rule]] = {}  # chains already looked up in the text
        self._by_offset: dict[int, Rule] = {}  # each line split once, whichever look-up found it
        self._lines: list[int] = []  # newlines before every 64 KiB of the text, for line numbers
        self._mark = (0, 0)  # the last offset given a line number, and the newlines before it
        self._all: dict[tuple[str, str], list[Rule]] | None = None if blocks is not None else {}
        self._policies: dict[tuple[str, str], str] = {}
        self.passes = 0  # passes over the text for look-ups (the checks in `parse` not counted)
        self.split = 0  # rules split into words

    @classmethod
    def read_line_by_line(cls, text: str) -> Ruleset:
        ruleset = cls(text)
        ruleset._all, ruleset._policies = _read_all(text)
        ruleset.split = sum(len(rules) for rules in ruleset._all.values())
        return ruleset

    # ---------------------------------------------------------------- every rule

    def read_all(self) -> None:
        """Split every rule now: for callers that visit most chains, one pass beats a pass per chain."""
        if self._all is None:
            self._all, self._policies = _read_all(self._text)
            self.split += sum(len(rules) for rules in self._all.values())
            self._loaded.clear()
            self._by_offset.clear()

    @property
    def chains(self) -> dict[tuple[str, str], list[Rule]]:
        self.read_all()
        assert self._all is not None
        return self._all

    @property
    def policies(self) -> dict[tuple[str, str], str]:  # built-in chains: ACCEPT or DROP
        self.read_all()
        return self._policies

    def all_rules(self) -> list[Rule]:
        return [r for rules in self.chains.values() for r in rules]

    @property
    def tables(self) -> set[str]:
        """The tables that have a chain (declared or with a rule)."""
        if self._all is not None:
            return {t for t, _ in self._all}
        return {b.table for b in self._blocks if _RULE_OR_CHAIN.search(self._text, b.start - 1, b.end)}

    # ---------------------------------------------------------------- chains asked for

    def rules(self, table: str, chain: str) -> list[Rule]:
        if self._all is not None:
            return self._all.get((table, chain), [])
        self.load(table, [chain])
        if self._all is not None:  # load read everything: too many look-ups
            return self._all.get((table, chain), [])
        return self._loaded[(table, chain)]

    def load(self, table: str, chains: Iterable[str]) -> None:
        """Find the rules of every chain in `chains` with one pass over the text (`chains` is not even
        iterated when every rule is split already)."""
        if self._all is not None:
            return
        wanted = [c for c in dict.fromkeys(chains) if (table, c) not in self._loaded]
        if not wanted:
            return
        if self.passes >= LAZY_PASSES:
            self.read_all()
            return
        self.passes += 1
        for chain in wanted:
            self._loaded[(table, chain)] = []
        text = self._text
        hits: list[tuple[int, str]] = []  # (offset of "-A", chain)
        if len(wanted) == 1:  # str.find is twice as fast as the regex engine's scan
            name = wanted[0]
            needle = f"-A {name}"
            at = text.find(needle)
            while at != -1:
                after = at + len(needle)
                if after == len(text) or text[after] in " \n":
                    hits.append((at, name))
                at = text.find(needle, after)
        else:
            names = "|".join(re.escape(c) for c in sorted(wanted, key=len, reverse=True))
            hits = [(m.start(), m[1]) for m in re.finditer(f"-A ({names})(?=[ \n]|\\Z)", text)]
        for at, name in hits:
            rule = self._rule_at(at, table)
            if rule is not None and rule.chain == name:
                self._loaded[(table, name)].append(rule)

    def containing(self, word: str, then: str = "") -> list[Rule]:
        """At least every rule whose words hold `word` (followed by one of the characters in `then` or by
        the word's end, when `then` is given): from text, the rules whose line holds it, in the text's
        order (the line is the words as written: no escapes here); read line by line, every rule.
        Callers test the words themselves."""
        if self._all is not None:
            return self.all_rules()
        self.passes += 1
        text = self._text
        ends = then + " \n" if then else ""
        found: list[Rule] = []
        at = text.find(word)
        while at != -1:
            after = at + len(word)
            if not ends or after == len(text) or text[after] in ends:
                line_start = text.rfind("\n", 0, at) + 1
                rule = self._rule_at(text.find("-A ", line_start, at), None)
                if rule is not None and (not found or found[-1] is not rule):
                    found.append(rule)
            at = text.find(word, at + 1)  # overlapping: `a/a` twice in `a/a/a`
        return found

    def has_chain(self, table: str, chain: str) -> bool:
        """Is `chain` declared in `table`, or has it a rule there?"""
        if self._all is not None:
            return (table, chain) in self._all
        declared = re.compile(f"\\n:{re.escape(chain)}(?=[ \n]|\\Z)")
        if any(declared.search(self._text, b.start - 1, b.end) for b in self._blocks if b.table == table):
            return True
        return bool(self.rules(table, chain))

    def in_table_order(self, rules: list[Rule]) -> list[Rule]:
        """`rules` in `all_rules` order: chains in the order the text first names them, then by line."""
        keys = list(dict.fromkeys((r.table, r.chain) for r in rules))
        if len(keys) < 2:
            return sorted(rules, key=lambda r: r.line)
        if self._all is not None:
            rank = {key: i for i, key in enumerate(self._all)}
        else:
            rank = {key: self._first_named(*key) for key in keys}
        return sorted(rules, key=lambda r: (rank[(r.table, r.chain)], r.line))

    def _first_named(self, table: str, chain: str) -> int:
        """Where the text first names `chain` in `table`: its declaration or its first rule."""
        first = re.compile(f"\\n(?::|(?:\\[[0-9]+:[0-9]+\\] )?-A ){re.escape(chain)}(?=[ \n]|\\Z)")
        self.passes += 1
        for block in self._blocks:
            if block.table == table:
                m = first.search(self._text, block.start - 1, block.end)
                if m:
                    return m.start()
        return len(self._text)

    def _rule_at(self, at: int, table: str | None) -> Rule | None:
        """The rule whose `-A` is at offset `at`, if that starts a rule line (after counters or not) of
        a table block (of `table`, when given); split once."""
        if at == -1:
            return None
        text = self._text
        line_start = text.rfind("\n", 0, at) + 1
        if line_start != at and not _COUNTERS.fullmatch(text, line_start, at):
            return None  # `-A` inside a comment, or in a chain's declaration
        rule = self._by_offset.get(line_start)
        if rule is not None:
            return rule if table is None or rule.table == table else None
        i = bisect.bisect_right(self._starts, line_start) - 1
        if i < 0 or line_start >= self._blocks[i].end:
            return None
        block = self._blocks[i]
        if table is not None and block.table != table:
            return None
        line_end = text.find("\n", at)
        line = text[line_start:len(text) if line_end == -1 else line_end].strip()
        packets = None
        if line.startswith("["):  # _COUNTERS matched: "[packets:bytes] "
            counters, _, line = line.partition("]")
            packets = int(counters[1:].split(":")[0])
            line = line.strip()
        words = split_rule(line)
        self.split += 1
        rule = Rule(block.table, words[1], words[2:], self._line_number(line_start), packets)
        self._by_offset[line_start] = rule
        return rule

    def _line_number(self, offset: int) -> int:
        """The line `offset` is on, counting as splitlines does (the text has only \n line breaks here):
        newlines are counted per 64 KiB once; then from the last offset asked for when it is before this
        one and near (rules found in the text's order), else from the slice's start."""
        text = self._text
        if not self._lines:
            self._lines = [0]
            for start in range(0, len(text), 1 << 16):
                self._lines.append(self._lines[-1] + text.count("\n", start, start + (1 << 16)))
        at, before = self._mark
        if not at <= offset < at + (1 << 16):
            at, before = offset >> 16 << 16, self._lines[offset >> 16]
        before += text.count("\n", at, offset)
        self._mark = (offset, before)
        return before + 1


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside, for work that makes a Rule and a list per line of a dump
    and frees none of them: each collection would walk everything made so far, and the time would grow
    faster than the table. What is freed inside is still freed (reference counts); the objects still
    alive when it ends are walked once, at the next collection: free them first when they can go."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def parse(text: str) -> Ruleset:
    """iptables-save output (any tables, with or without -c counters) into chains of rules. Text without
    any table (empty, or comments only) is a machine without rules: an empty Ruleset. Every table must
    end with its COMMIT line: a dump cut off inside one raises CutOff."""
    blocks = _blocks(text)
    if blocks is None:
        return Ruleset.read_line_by_line(text)  # raises as the text deserves
    return Ruleset(text, blocks)


def _read_all(text: str) -> tuple[dict[tuple[str, str], list[Rule]], dict[tuple[str, str], str]]:
    """Every chain and rule, line by line: the careful reader, which names the first bad line."""
    chains: dict[tuple[str, str], list[Rule]] = {}
    policies: dict[tuple[str, str], str] = {}
    table = ""
    opened = 0  # the line of the open table's *name, 0 outside a table
    seen_table = False
    last = 0
    # one str per distinct word: "-m", "comment", "-j", "KUBE-MARK-MASQ", a chain's name… recur in every
    # rule; sharing them keeps a third of the memory of a big table for a tenth more time
    same = {}.setdefault
    with collector_paused():
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            last = n
            if line.startswith("*"):
                if table:
                    raise CutOff(n, f"table {line[1:].strip()} begins, but table {table} (line {opened}) has no COMMIT line")
                table, opened, seen_table = line[1:].strip(), n, True
                continue
            if line == "COMMIT":
                table, opened = "", 0
                continue
            if not seen_table:
                raise NotIptablesSave(n, "expected a table line like *nat before any rule")
            if line.startswith(":"):
                words = line[1:].split()
                name = words[0] if words else ""
                if not name:
                    raise NotIptablesSave(n, "a chain line without a name")
                chains.setdefault((table, name), [])
                if len(words) > 1 and words[1] != "-":
                    policies[(table, name)] = words[1]
                continue
            packets = None
            if line.startswith("["):
                counters, _, line = line.partition("]")
                try:
                    packets = int(counters[1:].split(":")[0])
                except ValueError:
                    raise NotIptablesSave(n, f"bad counters {counters}]") from None
                line = line.strip()
            if not line.startswith("-A "):
                raise NotIptablesSave(n, f"not a rule, chain or table line: {raw[:60]!r}")
            if (line.count('"') - line.count('\\"')) % 2:
                raise NotIptablesSave(n, "an unclosed quote in the rule")
            words = split_rule(line)
            if not table:
                raise NotIptablesSave(n, "a rule outside a table (after COMMIT)")
            chain = same(words[1], words[1])
            args = words[2:]
            chains.setdefault((table, chain), []).append(Rule(table, chain, list(map(same, args, args)), n, packets))
    if table:
        raise CutOff(last, f"it ends inside table {table} (line {opened}), without the table's COMMIT line")
    return chains, policies


def names_service(comment: str, service: str) -> bool:
    """Does a kube-proxy comment belong to `ns/name`? Old kube-proxy wrote `ns/name:port` (an unnamed
    port as `ns/name:`), newer writes `ns/name` or `ns/name:port` followed by words."""
    if not comment.startswith(service):
        return False
    rest = comment[len(service):]
    return rest == "" or rest[0] in ": "


class _Followed:
    """What following a service's chains found: the chains passed, the endpoints, the affinity."""

    def __init__(self) -> None:
        self.chains: list[str] = []
        self.endpoints: list[Endpoint] = []
        self.affinity = ""  # "ClientIP, 10800 s" from the `-m recent --rcheck --seconds` rules


def _follow(ruleset: Ruleset, chain: str, seen: set[str], found: _Followed | None = None) -> _Followed:
    """Chains passed through and endpoints reached from `chain` (nat table)."""
    found = found if found is not None else _Followed()
    if chain in seen:
        return found
    seen.add(chain)
    found.chains.append(chain)
    remaining = 1.0
    rules = ruleset.rules("nat", chain)
    # the chains this one jumps to, found together: one pass over a dump's text instead of one each
    ruleset.load("nat", (t for t in (r.target for r in rules) if t.startswith(FOLLOWED)))
    for rule in rules:
        target = rule.target
        if target.startswith("KUBE-SEP-"):
            if "--rcheck" in rule.args:
                # ClientIP affinity: a client seen within --seconds goes back to the endpoint it had; the
                # statistic rules after these share out new clients, so this is no endpoint of its own
                seconds = rule.option("--seconds")
                found.affinity = f"ClientIP, {seconds} s" if seconds else "ClientIP"
                continue
            prob = rule.option("--probability")
            share = remaining * _probability(prob, rule) if prob else remaining
            remaining -= share
            pick = f"p={float(prob):.2f}" if prob else "rest"
            found.endpoints.append(Endpoint(_dnat(ruleset, target), share, target, pick, rule.packets, rule.line))
        elif target.startswith(JUMP_CHAINS):
            _follow(ruleset, target, seen, found)
    return found


def _probability(text: str, rule: Rule) -> float:
    """`-m statistic --probability`'s value: iptables takes a number from 0 to 1, nothing else."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:  # also NaN
        raise NotIptablesSave(rule.line, f"--probability {text[:40]!r} is not a number from 0 to 1 (chain {rule.chain})")
    return value


def _dnat(ruleset: Ruleset, sep: str) -> str | None:
    for rule in ruleset.rules("nat", sep):
        if rule.target == "DNAT":
            return rule.option("--to-destination")
    return None


def _kind(rule: Rule) -> str:
    comment = rule.comment
    for words, kind in (("external IP", "external IP"), ("loadbalancer IP", "load balancer"), ("cluster IP", "cluster IP")):
        if words in comment:
            return kind
    return "cluster IP"


def _destination(rule: Rule) -> str | None:
    """The rule's -d address without its host prefix (/32, /128)."""
    dest = rule.option("-d", "--destination")
    if dest is None:
        return None
    return dest.removesuffix("/32") if "." in dest else dest.removesuffix("/128")


def _family(ip: str | None, endpoints: list[Endpoint]) -> int:
    """6 for an IPv6 service address or, for a node port (no address), IPv6 endpoints ([ip]:port)."""
    if ip is not None:
        return 6 if ":" in ip else 4
    return 6 if any((e.address or "").startswith("[") for e in endpoints) else 4


def _port(rule: Rule) -> int | None:
    port = rule.option("--dport", "--destination-port")
    return int(port) if port and port.isdigit() else None


def _branch(rule: Rule, kind: str, entry: str, followed: _Followed, family: int | None) -> Branch:
    ip = None if kind == "node port" else _destination(rule)
    protocol = rule.option("-p", "--protocol") or "tcp"
    return Branch(kind, ip, _port(rule), protocol, family or _family(ip, followed.endpoints), entry, rule.line,
                  followed.chains, followed.endpoints, followed.affinity)


def trace(ruleset: Ruleset, namespace: str, name: str, family: int | None = None) -> Path:
    """`namespace/name`'s path through these rules. `family` (4 or 6) is the dump's, when known
    (iptables-save or ip6tables-save); else each branch's is told from its addresses."""
    service = f"{namespace}/{name}"
    result = Path(service, "iptables")
    # the rules naming the service hold its entries and its REJECTs: no other rule of the table is split
    holding = ruleset.containing(service, then=':"')
    named = [r for r in holding if names_service(r.comment, service)]
    entries = [r for r in named if r.table == "nat" and r.target.startswith(JUMP_CHAINS)]
    # kube-proxy comments the service's own chains too (KUBE-SVC-… -> KUBE-SEP-…): every chain those
    # rules jump to is found in the same pass as the entries' chains, before the path is followed
    ruleset.load("nat", (r.target for r in holding if r.table == "nat" and r.target.startswith(FOLLOWED)))
    for entry_chain in ("KUBE-SERVICES", "KUBE-NODEPORTS"):
        for rule in entries:
            if rule.chain == entry_chain:
                kind = "node port" if entry_chain == "KUBE-NODEPORTS" else _kind(rule)
                result.branches.append(_branch(rule, kind, entry_chain, _follow(ruleset, rule.target, set()), family))
    for rule in ruleset.in_table_order([r for r in named if r.target == "REJECT" and "has no endpoints" in r.comment]):
        dest = _destination(rule)
        kind = _kind(rule) if dest is not None else "node port"
        result.refusals.append(Refusal(kind, _address(rule), "reject", f"{rule.table}/{rule.chain}", rule.comment,
                                       rule.line))
    return result


def has_kube_proxy(ruleset: Ruleset) -> bool:
    """Does kube-proxy (iptables mode) have rules here? It always makes nat's KUBE-SERVICES chain."""
    return ruleset.has_chain("nat", "KUBE-SERVICES")


def _port_of(comment: str) -> tuple[str, str] | None:
    """(`ns/name`, port name) from a kube-proxy comment: `ns/name:port cluster IP`, `ns/name: cluster IP`
    (the article's), `ns/name`, `ns/name:port has no endpoints`; None for kube-proxy's own comments."""
    word = comment.split(" ", 1)[0]
    service, _, port = word.partition(":")
    namespace, _, name = service.partition("/")
    return (service, port) if namespace and name and "/" not in name else None


def _address(rule: Rule) -> str:
    dest = _destination(rule)
    port = rule.option("--dport", "--destination-port") or "?"
    proto = rule.option("-p", "--protocol") or "tcp"
    return f"{host_port(dest, port)}/{proto}" if dest else f"{port}/{proto}"


def service_ports(ruleset: Ruleset) -> list[ServicePort]:
    """Every service port kube-proxy's rules hold (those with endpoints from nat's KUBE-SERVICES and
    KUBE-NODEPORTS, those without from their REJECT rules), sorted by service and port name."""
    ruleset.read_all()  # every chain is visited: one pass, not one per chain
    found: dict[tuple[str, str], ServicePort] = {}

    def entry(comment: str) -> ServicePort | None:
        key = _port_of(comment)
        if key is None:
            return None
        return found.setdefault(key, ServicePort(*key))

    def add(items: list[str], item: str) -> None:
        if item not in items:
            items.append(item)

    for chain in ("KUBE-SERVICES", "KUBE-NODEPORTS"):
        for rule in ruleset.rules("nat", chain):
            if not rule.target.startswith(JUMP_CHAINS):
                continue
            port = entry(rule.comment)
            if port is None:
                continue
            add(port.node_ports if chain == "KUBE-NODEPORTS" else port.addresses, _address(rule))
            for endpoint in _follow(ruleset, rule.target, set()).endpoints:
                if endpoint.address:
                    add(port.endpoints, endpoint.address)
    for rule in ruleset.all_rules():
        if rule.target == "REJECT" and "has no endpoints" in rule.comment:
            port = entry(rule.comment)
            if port is None:
                continue
            port.rejected = True
            if rule.option("-d", "--destination"):
                add(port.addresses, _address(rule))
            elif rule.option("--dport", "--destination-port"):
                add(port.node_ports, _address(rule))
    return [found[key] for key in sorted(found)]


def services(ruleset: Ruleset) -> list[str]:
    """Every `ns/name` kube-proxy's rules hold (with endpoints or without), for 'did you mean': the
    services `service_ports` lists, without following each to its endpoints (nor splitting every rule
    of the table to find the REJECTs)."""
    found = set()
    for chain in ("KUBE-SERVICES", "KUBE-NODEPORTS"):
        for rule in ruleset.rules("nat", chain):
            key = _port_of(rule.comment) if rule.target.startswith(JUMP_CHAINS) else None
            if key is not None:
                found.add(key[0])
    for rule in ruleset.containing("has no endpoints"):
        key = _port_of(rule.comment) if rule.target == "REJECT" and "has no endpoints" in rule.comment else None
        if key is not None:
            found.add(key[0])
    return sorted(found)
