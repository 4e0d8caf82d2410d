"""kube-proxy's nftables mode: read the text of `nft list ruleset` (or `nft list table ip kube-proxy`)
and trace a service's path to its pods, as a `proxypath.Path`.

The text, not `nft -j`: it is what operators save and paste, it is nft's own input language (a listing
loads back with `nft -f`, so nft keeps it stable across versions), and it is several times smaller
than the JSON at 20 000 services. nft 1.0.6 prints kube-proxy's chain names (`service-ULMVA6XW-ns1/svc1/
tcp/p80`) unquoted, `dnat to 10.180.0.1:80` (`dnat to [fd00::1]:80` in ip6), affinity timeouts as
`3h`, and wraps `elements = { … }` over lines (maps one element a line, sets several), an element's
comment between its key and its verdict: `172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain`.

The path is followed the way the kernel does: `services` looks the packet up in the `service-ips` map
(cluster, external and load-balancer IPs) and the `service-nodeports` map, whose elements `goto`
`external-…` or `service-…` (`local-…`) chains, whose `numgen random mod N vmap` picks an `endpoint-…`
chain that DNATs. A service's chains are found by the `ns/name/proto/port` part of their names and its
refusals by the `ns/name:port` comments of the no-endpoint maps, never by recomputing the hashes.

External IPs and load-balancer IPs both go to the service's `external-…` chain with nothing else to
tell them apart, except that a load-balancer IP with source ranges is also in `firewall-ips`: such an
address is called "load balancer", any other "external IP or load balancer". With
externalTrafficPolicy Local the `external-…` chain short-circuits pod and node traffic to `service-…`
and sends the rest to `local-…`; with no endpoint on this node it sends the rest nowhere and the
no-endpoint maps drop it: the branch then follows the short-circuit and says so in a note, and the
drops are refusals. Affinity reads as "ClientIP, 10800 s (3h)": seconds as kube-proxy's Service says
them, then the timeout as nft printed it.

A listing of 20 000 services is tens of megabytes and a trace reads a few dozen lines of it: `parse`
finds where each table begins and ends and keeps the text; a trace finds the service's lines with a
few `str.find` passes over the kube-proxy tables and reads only those (`Ruleset.read` counts them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from wizard.proxypath import Branch, Endpoint, NotListing, Path, Refusal, ServicePort, host_port

TABLE = "kube-proxy"
FAMILIES = {"ip": 4, "ip6": 6, "inet": 0}  # inet: both, told apart by the address
# chain and set name prefixes kube-proxy writes; the rest is HASH8-ns/name/proto/port[__ip/port]
_NAME = re.compile(r"(service|local|external|endpoint|firewall|affinity)-[A-Z2-7]{8}-(.+)")
_ELEMENT = re.compile(r'(?P<key>.+?)(?: comment "(?P<comment>[^"]*)")? : (?P<verdict>.+)')
_NUMGEN = re.compile(r"numgen random mod (\d+) vmap \{ (.*) \}")
_DNAT = re.compile(r"\bdnat (?:ip6? )?to (\S+)")
_AFFINITY = re.compile(r"\bip6? saddr @(\S+) goto (\S+)")
_HANDLE = re.compile(r" # handle \d+$")
_COUNTER = re.compile(r"\bcounter packets (\d+)")
_SOURCES = re.compile(r"\bip6? saddr != (?:\{ (.*?) \}|(\S+)) drop")
_SERVICE_IN_MAP = re.compile(
    r'goto (?:service|local|external)-[A-Z2-7]{8}-([^/\s,]+/[^/\s,]+)/|comment "([^"/:]+/[^":]+)(?::[^"]*)?" :')
MAPS = ("service-ips", "service-nodeports", "firewall-ips", "no-endpoint-services", "no-endpoint-nodeports")
_JSON_WHY = "this is `nft -j` JSON; save the text of `nft list ruleset` (without -j) instead"


class NotNftRuleset(NotListing):
    """Not the text of `nft list ruleset`."""


class CutOff(NotNftRuleset):
    """A listing that stops inside a table (its closing `}` missing): a copy cut short. What is missing
    may be the very chains asked about, so it is refused, not traced."""


@dataclass(frozen=True, slots=True)
class _Table:
    family: str
    name: str
    start: int  # offset of the `table` line
    end: int  # offset of the table's closing `}` line


@dataclass(frozen=True, slots=True)
class _Element:
    key: list[str]  # ["172.30.0.41", "tcp", "80"] or ["tcp", "3001"]
    comment: str
    verdict: str  # "goto service-…", "drop", "goto reject-chain"
    line: int

    @property
    def target(self) -> str:
        """The chain a `goto`/`jump` verdict names, else ""."""
        word, _, chain = self.verdict.partition(" ")
        return chain if word in ("goto", "jump") else ""


def looks_like_json(text: str) -> bool:
    head = text.lstrip()[:400]
    return head.startswith("{") and '"nftables"' in head


def looks_like(text: str) -> bool:
    """Is this `nft list ruleset` / `nft list table` text: its first line that is not blank or a comment
    a `table <family> <name> {` line?"""
    for line in _head_lines(text):
        return bool(re.fullmatch(r"table [a-z0-9]+ \S+ \{(?: # handle \d+)?", line))
    return False


def _head_lines(text: str) -> Iterator[str]:
    at = 0
    while at < len(text):
        end = text.find("\n", at)
        end = len(text) if end == -1 else end
        line = text[at:end].strip()
        if line and not line.startswith("#"):
            yield line
        at = end + 1


class Ruleset:
    """The tables of a listing, found by `parse`; the lines of the kube-proxy tables are read when a
    trace asks for them."""

    def __init__(self, text: str, tables: list[_Table]) -> None:
        self._text = text
        self.tables = tables
        self._lines: list[int] = []  # newlines before every 4 KiB of the text, for line numbers
        self._regions: dict[tuple[int, str], tuple[int, int] | None] = {}
        self._chains: dict[tuple[int, str], list[tuple[int, str]]] = {}
        self.passes = 0  # searches through a whole table (finding the tables not counted)
        self.read = 0  # lines read into rules or elements

    @property
    def kube_proxy(self) -> list[_Table]:
        return [t for t in self.tables if t.name == TABLE and t.family in FAMILIES]

    # ---------------------------------------------------------------- lines of the text

    def line_of(self, offset: int) -> int:
        text = self._text
        if not self._lines:  # small blocks: --list asks for the line of every endpoint's DNAT rule
            self._lines = [0]
            for start in range(0, len(text), 1 << 12):
                self._lines.append(self._lines[-1] + text.count("\n", start, start + (1 << 12)))
        block = offset >> 12
        return self._lines[block] + text.count("\n", block << 12, offset) + 1

    def _line_at(self, offset: int) -> tuple[int, int]:
        start = self._text.rfind("\n", 0, offset) + 1
        end = self._text.find("\n", offset)
        return start, len(self._text) if end == -1 else end

    def _find_all(self, table: _Table, needle: str, start: int | None = None, end: int | None = None) -> list[int]:
        self.passes += 1
        text, found = self._text, []
        at = text.find(needle, table.start if start is None else start, table.end if end is None else end)
        while at != -1:
            found.append(at)
            at = text.find(needle, at + 1, table.end if end is None else end)
        return found

    # ---------------------------------------------------------------- maps, sets, chains

    def met(self, table: _Table, span: tuple[int, int]) -> None:
        """Note where a chain or set is when a search passes its header line, so that reading it
        needs no search of its own."""
        start, end = span
        for kind in ("chain", "set"):
            if self._text.startswith(f"\t{kind} ", start, end):
                name = self._text[start + len(kind) + 2:end].split(" ", 1)[0]
                close = self._text.find("\n\t}", end, table.end + 1)
                self._regions.setdefault((table.start, f"{kind} {name}"), (start, table.end if close == -1 else close + 1))

    def region(self, table: _Table, kind: str, name: str) -> tuple[int, int] | None:
        """(offset of the `\\tmap NAME {` line, offset of its closing `\\t}`) of a map, set or chain."""
        key = (table.start, f"{kind} {name}")
        if key not in self._regions:
            self._regions[key] = None
            self.passes += 1
            needle = f"\n\t{kind} {name} {{"
            at = self._text.find(needle, table.start, table.end)
            while at != -1 and self._text[at + len(needle)] not in "\n ":
                at = self._text.find(needle, at + 1, table.end)
            if at != -1:
                end = self._text.find("\n\t}", at + 1, table.end + 1)
                self._regions[key] = (at + 1, table.end if end == -1 else end + 1)
        return self._regions[key]

    def _body(self, where: tuple[int, int], header: bool = True) -> list[tuple[int, str]]:
        """(offset, text) of each line inside a block (after its header line, unless `header` is False),
        handles (`nft -a`) cut off."""
        start, end = where
        text, lines = self._text, []
        at = text.find("\n", start, end) + 1 if header else start
        while 0 < at < end:
            stop = text.find("\n", at, end)
            stop = end if stop == -1 else stop
            line = text[at:stop].strip()
            if line and line != "}":
                lines.append((at, _HANDLE.sub("", line)))
            at = stop + 1
        return lines

    def index_chains(self, table: _Table) -> None:
        """Where every chain of `table` is, in one pass: for callers that visit most of them, one pass
        beats a search per chain."""
        text, end = self._text, table.end
        self.passes += 1
        at = text.find("\n\tchain ", table.start, end)
        while at != -1:
            name_end = text.find(" ", at + 8, end)
            close = text.find("\n\t}", at + 1, end + 1)
            if name_end == -1 or close == -1:
                break
            self._regions.setdefault((table.start, f"chain {text[at + 8:name_end]}"), (at + 1, close + 1))
            at = text.find("\n\tchain ", close, end)

    def rules(self, table: _Table, chain: str) -> list[tuple[int, str]]:
        """The rules of `chain` (offset, text), without its type/policy and comment lines."""
        key = (table.start, chain)
        if key not in self._chains:
            where = self.region(table, "chain", chain)
            body = self._body(where) if where else []
            self._chains[key] = [(at, line) for at, line in body if not line.startswith(("type ", "comment ", "policy "))]
            self.read += len(self._chains[key])
        return self._chains[key]

    def elements(self, table: _Table, kind: str, name: str,
                 lines: tuple[int, int] | None = None) -> list[_Element]:
        """The elements of a map or set (all of them, or those on the lines within `lines`)."""
        where = self.region(table, kind, name)
        if where is None:
            return []
        found: list[_Element] = []
        last, number = -1, 0  # line numbers counted on from the first, not from the text's start each
        for at, line in self._body(lines or where, header=lines is None):
            if lines is None and not line.startswith("elements = {") and not found:
                continue  # type, flags, comment: before the elements
            text = line.removeprefix("elements = {").strip().removesuffix("}").strip()
            number = self.line_of(at) if last == -1 else number + self._text.count("\n", last, at)
            last = at
            for part in _split_elements(text):
                self.read += 1
                if kind == "set":
                    found.append(_Element([part], "", "", number))
                    continue
                m = _ELEMENT.fullmatch(part)
                if m is None:
                    raise NotNftRuleset(number, f"not an element of map {name}: {part[:80]!r}")
                found.append(_Element(m["key"].split(" . "), m["comment"] or "", m["verdict"], number))
        return found

    def set_attribute(self, table: _Table, name: str, attribute: str) -> str:
        where = self.region(table, "set", name)
        for _, line in self._body(where) if where else []:
            if line.startswith(attribute + " "):
                return line[len(attribute) + 1:]
        return ""


def _split_elements(text: str) -> list[str]:
    """`a, b,` into [a, b]; commas inside a quoted comment do not split."""
    if '"' not in text:
        return [p.strip() for p in text.split(",") if p.strip()]
    parts, quoted, current = [], False, []
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


# ---------------------------------------------------------------- parse

def parse(text: str) -> Ruleset:
    """The tables of `nft list ruleset` text. Text with no table (empty, comments only) is a machine
    without rules. Raises NotNftRuleset for other text (JSON included) and CutOff for a listing that
    stops inside a table."""
    if looks_like_json(text):
        raise NotNftRuleset(1, _JSON_WHY)
    text = _as_printed(text)
    tables: list[_Table] = []
    ruleset = Ruleset(text, tables)
    at = 0  # where the text outside tables resumes
    while True:
        header = text.find("table ", at) if at == 0 and text.startswith("table ") else text.find("\ntable ", at)
        header = header if header == -1 or text.startswith("table ", header) else header + 1
        _outside(ruleset, text, at, len(text) if header == -1 else header)
        if header == -1:
            return ruleset
        header_end = text.find("\n", header)
        header_end = len(text) if header_end == -1 else header_end
        m = re.fullmatch(r"table ([a-z0-9]+) (\S+) \{(?: # handle \d+)?", text[header:header_end].strip())
        if m is None:
            raise NotNftRuleset(ruleset.line_of(header), f"not a table line: {text[header:header_end][:80]!r}")
        # nft indents everything inside a table: its closing brace is the last line starting with `}`
        # before the next table (searched from the end: one pass over the text, not two)
        following = text.find("\ntable ", header_end)
        close = text.rfind("\n}", header_end, len(text) if following == -1 else following)
        while close != -1 and close + 2 < len(text) and text[close + 2] not in "\n ":
            close = text.rfind("\n}", header_end, close)
        if close == -1:
            name, line = f"{m[1]} {m[2]}", ruleset.line_of(header)
            if following != -1:
                raise CutOff(ruleset.line_of(following + 1),
                             f"a table begins, but table {name} (line {line}) has no closing }}")
            last = ruleset.line_of(len(text.rstrip("\n")))
            raise CutOff(last, f"it ends inside table {name} (line {line}), without the table's closing }}")
        table = _Table(m[1], m[2], header, close + 1)
        if (table.name == TABLE and text.count("{", header, close) != text.count("}", header, close + 2)
                and _unbalanced(text[header:close + 2])):
            raise CutOff(ruleset.line_of(header), f"table {m[1]} {m[2]} has unbalanced braces: a listing cut or joined")
        tables.append(table)
        at = close + 2


def _as_printed(text: str) -> str:
    """nft indents with tabs and ends lines with \\n; a copy through a web page or an editor may have
    spaces and \\r\\n instead. The lookups search for `\\n\\tchain NAME {`: put nft's back."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\n\t" not in text:
        indent = re.search(r"\n( +)\S", text)
        if indent:
            unit = indent[1]
            text = re.sub(f"(?m)^((?:{unit})+)", lambda m: "\t" * (len(m[1]) // len(unit)), text)
    return text


def _unbalanced(block: str) -> bool:
    bare = re.sub(r'"[^"\n]*"', "", block)
    return bare.count("{") != bare.count("}")


def _outside(ruleset: Ruleset, text: str, start: int, end: int) -> None:
    """Between tables nft prints nothing but blank lines (and comments, in a saved file)."""
    at = start
    while at < end:
        stop = text.find("\n", at, end)
        stop = end if stop == -1 else stop
        line = text[at:stop].strip()
        if line and not line.startswith("#"):
            why = ("an iptables-save dump, not nft list ruleset output" if line.startswith(("*", ":", "-A "))
                   else f"expected a `table <family> <name> {{` line (nft list ruleset), got {line[:60]!r}")
            raise NotNftRuleset(ruleset.line_of(at), why)
        at = stop + 1


def has_kube_proxy(ruleset: Ruleset) -> bool:
    """Is a kube-proxy table (family ip, ip6 or inet) in the listing?"""
    return bool(ruleset.kube_proxy)


# ---------------------------------------------------------------- names

def _owner(chain: str) -> tuple[str, str, str, str] | None:
    """(kind, ns/name, proto, port name) from a kube-proxy chain or set name, else None."""
    m = _NAME.fullmatch(chain)
    if m is None:
        return None
    parts = m[2].split("__", 1)[0].split("/")
    if len(parts) != 4:
        return None
    return m[1], f"{parts[0]}/{parts[1]}", parts[2], parts[3]


def _names(comment: str, service: str) -> bool:
    return comment == service or comment.startswith(service + ":")


def _family(table: _Table, ip: str | None) -> int:
    return FAMILIES[table.family] or (6 if ip and ":" in ip else 4)


def _verdict(verdict: str) -> str:
    return "reject" if verdict == "goto reject-chain" else verdict


def _seconds(timeout: str) -> int | None:
    """nft's duration (`3h`, `1h1m1s`, `10800s`) in seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0}
    parts = re.findall(r"(\d+)(ms|d|h|m|s)", timeout)
    if not parts or "".join(n + u for n, u in parts) != timeout:
        return None
    return sum(int(n) * units[u] for n, u in parts)


# ---------------------------------------------------------------- following chains

@dataclass
class _Walk:
    chains: list[str] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    affinity: str = ""
    notes: list[str] = field(default_factory=list)


def _follow(ruleset: Ruleset, table: _Table, chain: str, walk: _Walk, seen: set[str]) -> None:
    if chain in seen:
        return
    seen.add(chain)
    walk.chains.append(chain)
    rules = ruleset.rules(table, chain)
    onward = [line.split()[1] for _, line in rules if line.startswith("goto ")]
    short = [(line, line.split(" goto ", 1)[1].split()[0]) for _, line in rules
             if " goto " in line and "short-circuit" in line and not line.startswith("goto ")]
    if short:
        who = " and ".join(w for w in ("pod", "local") if any(f"short-circuit {w} traffic" in s for s, _ in short))
        target = short[0][1]
        if onward:
            walk.notes.append(f"externalTrafficPolicy Local: {chain} short-circuits {who} traffic to {target}")
        else:
            walk.notes.append(f"externalTrafficPolicy Local and no endpoint on this node: only {who} traffic goes on "
                              f"(to {target}); other sources are dropped")
            onward = [target]
    for at, line in rules:
        m = _AFFINITY.search(line)
        if m and not walk.affinity:
            timeout = ruleset.set_attribute(table, m[1], "timeout")
            seconds = _seconds(timeout)
            walk.affinity = f"ClientIP, {timeout or '?'}" if seconds is None else (
                f"ClientIP, {seconds} s" + ("" if timeout == f"{seconds}s" else f" ({timeout})"))
        m = _NUMGEN.search(line)
        if m:
            _numgen(ruleset, table, line, at, m, walk)
    for target in onward:
        if "/" in target:  # kube-proxy's own chains (mark-for-masquerade, reject-chain) have none
            _follow(ruleset, table, target, walk, seen)


def _numgen(ruleset: Ruleset, table: _Table, line: str, at: int, m: re.Match[str], walk: _Walk) -> None:
    modulus = int(m[1])
    picks: dict[str, list[str]] = {}
    for item in m[2].split(","):
        index, _, verdict = item.partition(":")
        word, _, target = verdict.strip().partition(" ")
        if word not in ("goto", "jump") or not target or not index.strip().isdigit() or modulus == 0:
            raise NotNftRuleset(ruleset.line_of(at), f"cannot read the numgen map: {line[:100]!r}")
        picks.setdefault(target.strip(), []).append(index.strip())
    for target, indexes in picks.items():
        address, packets, where = _dnat(ruleset, table, target)
        pick = f"numgen {', '.join(indexes)} of {modulus}"
        walk.endpoints.append(Endpoint(address, len(indexes) / modulus, target, pick, packets, where))


def _dnat(ruleset: Ruleset, table: _Table, chain: str) -> tuple[str | None, int | None, int | None]:
    for at, line in ruleset.rules(table, chain):
        m = _DNAT.search(line)
        if m:
            counted = _COUNTER.search(line)
            return m[1], int(counted[1]) if counted else None, ruleset.line_of(at)
    return None, None, None


# ---------------------------------------------------------------- trace

def trace(ruleset: Ruleset, namespace: str, name: str) -> Path:
    service = f"{namespace}/{name}"
    path = Path(service, "nftables")
    for table in sorted(ruleset.kube_proxy, key=lambda t: (FAMILIES[t.family] or 5, t.start)):
        _trace_table(ruleset, table, service, path)
    return path


def _trace_table(ruleset: Ruleset, table: _Table, service: str, path: Path) -> None:
    maps = {m: ruleset.region(table, "map", m) for m in MAPS}
    # every line naming one of the service's chains or sets holds `-ns/name/`: the map elements that
    # lead into them are among them, found in one pass
    lines: dict[str, list[tuple[int, int]]] = {m: [] for m in MAPS}
    for at in ruleset._find_all(table, f"-{service}/"):
        span = ruleset._line_at(at)
        for m, where in maps.items():
            if where and where[0] < at < where[1]:
                if not lines[m] or lines[m][-1] != span:
                    lines[m].append(span)
                break
        else:
            ruleset.met(table, span)  # the service's own chains and sets: their headers are on the way
    entries = {m: [e for span in lines[m] for e in ruleset.elements(table, "map", m, span)
                   if (_owner(e.target) or ("", ""))[1] == service] for m in MAPS}
    guarded = {tuple(e.key): e.target for e in entries["firewall-ips"]}
    branches: list[Branch] = []
    for m in ("service-ips", "service-nodeports"):
        for element in entries[m]:
            owner = _owner(element.target)
            assert owner is not None
            kind_of_chain, _, protocol, _ = owner
            if m == "service-nodeports":
                kind, ip, port = "node port", None, element.key[-1]
            else:
                ip, port = element.key[0], element.key[-1]
                kind = "cluster IP" if kind_of_chain in ("service", "local") else (
                    "load balancer" if tuple(element.key) in guarded else "external IP or load balancer")
            walk = _Walk()
            _follow(ruleset, table, element.target, walk, set())
            firewall = guarded.get(tuple(element.key))
            if firewall:
                walk.notes.insert(0, _firewall_note(ruleset, table, firewall))
            branches.append(Branch(kind, ip, int(port) if port.isdigit() else None, element.key[-2], _family(table, ip),
                                   f"map {m}", element.line, walk.chains, walk.endpoints, walk.affinity, walk.notes))
    order = {"cluster IP": 0, "load balancer": 1, "external IP or load balancer": 1, "node port": 2}
    path.branches += sorted(branches, key=lambda b: order[b.kind])
    for m in ("no-endpoint-services", "no-endpoint-nodeports"):
        where = maps[m]
        if where is None:
            continue
        spans: list[tuple[int, int]] = []
        for needle in (f'comment "{service}"', f'comment "{service}:'):
            for at in ruleset._find_all(table, needle, where[0], where[1]):
                span = ruleset._line_at(at)
                if span not in spans:
                    spans.append(span)
        for span in sorted(spans):
            for element in ruleset.elements(table, "map", m, span):
                if not _names(element.comment, service):
                    continue
                if m == "no-endpoint-nodeports":
                    kind, address = "node port", f"{element.key[-1]}/{element.key[0]}"
                else:
                    ip = element.key[0]
                    kind = _refused_kind(ruleset, table, ip, tuple(element.key) in guarded)
                    address = f"{host_port(ip, element.key[-1])}/{element.key[-2]}"
                path.refusals.append(Refusal(kind, address, _verdict(element.verdict), f"map {m}", element.comment,
                                             element.line))


def _firewall_note(ruleset: Ruleset, table: _Table, chain: str) -> str:
    for _, line in ruleset.rules(table, chain):
        m = _SOURCES.search(line)
        if m:
            return f"source ranges {m[1] or m[2]}: {chain} drops other sources"
    return f"source ranges: {chain} drops other sources"


def _refused_kind(ruleset: Ruleset, table: _Table, ip: str, guarded: bool) -> str:
    """A refused address is the cluster IP when it is in the cluster-ips set."""
    where = ruleset.region(table, "set", "cluster-ips")
    if where is not None:
        ruleset.passes += 1
        if re.search(f"[ \t{{]{re.escape(ip)}(?=,| }}|\n)", ruleset._text[where[0]:where[1]]):
            return "cluster IP"
    return "load balancer" if guarded else "external IP or load balancer"


# ---------------------------------------------------------------- every service

def services(ruleset: Ruleset) -> list[str]:
    """Every `ns/name` the kube-proxy maps hold (with endpoints or without), for 'did you mean'."""
    found: set[str] = set()
    for table in ruleset.kube_proxy:
        for m in MAPS:
            where = ruleset.region(table, "map", m)
            if where:
                ruleset.passes += 1
                for chain_service, comment in _SERVICE_IN_MAP.findall(ruleset._text, where[0], where[1]):
                    found.add(chain_service or comment)
    return sorted(found)


def service_ports(ruleset: Ruleset) -> list[ServicePort]:
    """Every service port kube-proxy's maps hold, sorted by service and port name; `rejected` when it
    has no endpoint and a no-endpoint map refuses it."""
    found: dict[tuple[str, str], ServicePort] = {}

    def add(items: list[str], item: str) -> None:
        if item not in items:
            items.append(item)

    for table in sorted(ruleset.kube_proxy, key=lambda t: (FAMILIES[t.family] or 5, t.start)):
        ruleset.index_chains(table)
        reached: dict[str, list[str]] = {}
        for m in ("service-ips", "service-nodeports"):
            # the cluster IP first, as explain-service lists a port's addresses
            for element in sorted(ruleset.elements(table, "map", m), key=lambda e: e.target.startswith("external-")):
                owner = _owner(element.target)
                if owner is None:
                    continue
                port = found.setdefault((owner[1], owner[3]), ServicePort(owner[1], owner[3]))
                if m == "service-nodeports":
                    add(port.node_ports, f"{element.key[-1]}/{element.key[0]}")
                else:
                    add(port.addresses, f"{host_port(element.key[0], element.key[-1])}/{element.key[-2]}")
                if element.target not in reached:  # a service's ways in share its chains
                    walk = _Walk()
                    _follow(ruleset, table, element.target, walk, set())
                    reached[element.target] = [e.address for e in walk.endpoints if e.address]
                for address in reached[element.target]:
                    add(port.endpoints, address)
        for m in ("no-endpoint-services", "no-endpoint-nodeports"):
            for element in ruleset.elements(table, "map", m):
                service, _, port_name = element.comment.partition(":")
                if "/" not in service:
                    continue
                port = found.setdefault((service, port_name), ServicePort(service, port_name))
                if m == "no-endpoint-nodeports":
                    add(port.node_ports, f"{element.key[-1]}/{element.key[0]}")
                else:
                    add(port.addresses, f"{host_port(element.key[0], element.key[-1])}/{element.key[-2]}")
                port.rejected = True
    for port in found.values():
        port.rejected = port.rejected and not port.endpoints
    return [found[key] for key in sorted(found)]
