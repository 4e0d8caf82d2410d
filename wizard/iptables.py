"""kube-proxy's iptables rules: parse `iptables-save` text and trace a service's path to its pods.

The path is followed by jumps and rule comments, the way seed-procedure §5 reads it, never by
recomputing kube-proxy's chain hashes: KUBE-SERVICES (cluster IP:port) -> KUBE-SVC-… -> KUBE-SEP-…
(picked with -m statistic probability) -> DNAT pod:port, and the node-port branch from
KUBE-NODEPORTS (through KUBE-EXT-… on newer kube-proxy). Works on any iptables-save text, live or
saved on another node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

JUMP_CHAINS = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")
# iptables-save quotes a word with "…" (inner quotes as \") and leaves the rest bare; a regex
# splits a rule 10x faster than shlex, which matters on a nat table of thousands of services
_WORD = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_UNESCAPE = re.compile(r"\\(.)")


def split_rule(line: str) -> list[str]:
    if '"' not in line:
        return line.split()
    words = []
    for quoted, bare in _WORD.findall(line):
        words.append(_UNESCAPE.sub(r"\1", quoted) if bare == "" else bare)
    return words


class NotIptablesSave(ValueError):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line
        self.why = why


class CutOff(NotIptablesSave):
    """iptables-save output that stops inside a table (no COMMIT line): a copy cut short, a transfer
    that broke off. What is missing may be the very rules asked about, so it is refused, not traced."""


@dataclass
class Rule:
    table: str
    chain: str
    args: list[str]
    line: int
    packets: int | None = None  # with iptables-save -c

    def option(self, *names: str) -> str | None:
        for i, word in enumerate(self.args[:-1]):
            if word in names:
                return self.args[i + 1]
        return None

    @property
    def target(self) -> str:
        return self.option("-j", "--jump") or ""

    @property
    def comment(self) -> str:
        return self.option("--comment") or ""


@dataclass
class Ruleset:
    chains: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    policies: dict[tuple[str, str], str] = field(default_factory=dict)  # built-in chains: ACCEPT or DROP

    def rules(self, table: str, chain: str) -> list[Rule]:
        return self.chains.get((table, chain), [])

    def all_rules(self) -> list[Rule]:
        return [r for rules in self.chains.values() for r in rules]

    @property
    def tables(self) -> set[str]:
        return {t for t, _ in self.chains}


def parse(text: str) -> Ruleset:
    """iptables-save output (any tables, with or without -c counters) into chains of rules. Text without
    any table (empty, or comments only) is a machine without rules: an empty Ruleset. Every table must
    end with its COMMIT line: a dump cut off inside one raises CutOff."""
    ruleset = Ruleset()
    table = ""
    opened = 0  # the line of the open table's *name, 0 outside a table
    seen_table = False
    last = 0
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
            ruleset.chains.setdefault((table, name), [])
            if len(words) > 1 and words[1] != "-":
                ruleset.policies[(table, name)] = words[1]
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
        chain = words[1]
        ruleset.chains.setdefault((table, chain), []).append(Rule(table, chain, words[2:], n, packets))
    if table:
        raise CutOff(last, f"it ends inside table {table} (line {opened}), without the table's COMMIT line")
    return ruleset


def names_service(comment: str, service: str) -> bool:
    """Does a kube-proxy comment belong to `ns/name`? Old kube-proxy wrote `ns/name:port` (an unnamed
    port as `ns/name:`), newer writes `ns/name` or `ns/name:port` followed by words."""
    if not comment.startswith(service):
        return False
    rest = comment[len(service):]
    return rest == "" or rest[0] in ": "


@dataclass
class Endpoint:
    chain: str
    share: float  # the fraction of new connections this endpoint gets
    probability: str | None  # as written on the KUBE-SVC rule
    destination: str | None  # DNAT --to-destination ip:port, None when the chain has no DNAT
    packets: int | None = None

    @property
    def ip(self) -> str:
        return (self.destination or "").rsplit(":", 1)[0]


@dataclass
class Branch:
    kind: str  # "cluster IP", "node port", "external IP", "load balancer"
    entry: Rule
    chains: list[str]  # KUBE-EXT-… / KUBE-SVC-… in the order followed
    endpoints: list[Endpoint]

    @property
    def address(self) -> str:
        return _address(self.entry)


@dataclass
class Trace:
    service: str
    branches: list[Branch] = field(default_factory=list)
    no_endpoints: list[Rule] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return sorted({e.destination for b in self.branches for e in b.endpoints if e.destination})

    @property
    def complete(self) -> bool:
        return any(e.destination for b in self.branches for e in b.endpoints)


def _follow(ruleset: Ruleset, chain: str, seen: set[str]) -> tuple[list[str], list[Endpoint]]:
    """Chains passed through and endpoints reached from `chain` (nat table)."""
    if chain in seen:
        return [], []
    seen.add(chain)
    chains, endpoints = [chain], []
    remaining = 1.0
    for rule in ruleset.rules("nat", chain):
        target = rule.target
        if target.startswith("KUBE-SEP-"):
            prob = rule.option("--probability")
            share = remaining * float(prob) if prob else remaining
            remaining -= share
            endpoints.append(Endpoint(target, share, prob, _dnat(ruleset, target), rule.packets))
        elif target.startswith(JUMP_CHAINS):
            more, found = _follow(ruleset, target, seen)
            chains += more
            endpoints += found
    return chains, endpoints


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


def trace(ruleset: Ruleset, namespace: str, name: str) -> Trace:
    service = f"{namespace}/{name}"
    result = Trace(service)
    for rule in ruleset.rules("nat", "KUBE-SERVICES"):
        if names_service(rule.comment, service) and rule.target.startswith(JUMP_CHAINS):
            chains, endpoints = _follow(ruleset, rule.target, set())
            result.branches.append(Branch(_kind(rule), rule, chains, endpoints))
    for rule in ruleset.rules("nat", "KUBE-NODEPORTS"):
        if names_service(rule.comment, service) and rule.target.startswith(JUMP_CHAINS):
            chains, endpoints = _follow(ruleset, rule.target, set())
            result.branches.append(Branch("node port", rule, chains, endpoints))
    for rule in ruleset.all_rules():
        if rule.target == "REJECT" and names_service(rule.comment, service) and "has no endpoints" in rule.comment:
            result.no_endpoints.append(rule)
    return result


def has_kube_proxy(ruleset: Ruleset) -> bool:
    """Does kube-proxy (iptables mode) have rules here? It always makes nat's KUBE-SERVICES chain."""
    return ("nat", "KUBE-SERVICES") in ruleset.chains


def _port_of(comment: str) -> tuple[str, str] | None:
    """(`ns/name`, port name) from a kube-proxy comment: `ns/name:port cluster IP`, `ns/name: cluster IP`
    (the article's), `ns/name`, `ns/name:port has no endpoints`; None for kube-proxy's own comments."""
    word = comment.split(" ", 1)[0]
    service, _, port = word.partition(":")
    namespace, _, name = service.partition("/")
    return (service, port) if namespace and name and "/" not in name else None


@dataclass
class ServicePort:
    """One port of a service as kube-proxy programmed it: what `explain-service --list` shows."""

    service: str  # "ns/name"
    port: str  # the port's name, "" when unnamed
    addresses: list[str] = field(default_factory=list)  # "10.254.124.145:8080/tcp": cluster IP, external, LB
    node_ports: list[str] = field(default_factory=list)  # "30554/tcp"
    endpoints: list[str] = field(default_factory=list)  # "172.30.38.2:8080", in the order kube-proxy picks
    rejected: bool = False  # kube-proxy rejects it: the service has no endpoints


def _address(rule: Rule) -> str:
    dest = (rule.option("-d", "--destination") or "").removesuffix("/32")
    port = rule.option("--dport", "--destination-port") or "?"
    proto = rule.option("-p", "--protocol") or "tcp"
    return f"{dest}:{port}/{proto}" if dest else f"{port}/{proto}"


def service_ports(ruleset: Ruleset) -> list[ServicePort]:
    """Every service port kube-proxy's rules hold (those with endpoints from nat's KUBE-SERVICES and
    KUBE-NODEPORTS, those without from their REJECT rules), sorted by service and port name."""
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
            for endpoint in _follow(ruleset, rule.target, set())[1]:
                if endpoint.destination:
                    add(port.endpoints, endpoint.destination)
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
    """Every `ns/name` kube-proxy's rules hold (with endpoints or without), for 'did you mean'."""
    return sorted({port.service for port in service_ports(ruleset)})


def render(result: Trace, subnets: dict[str, str] | None = None) -> str:
    """The path as a tree, one branch per entry (cluster IP, node port, …)."""
    subnets = subnets or {}
    lines = [result.service]
    for b_index, branch in enumerate(result.branches):
        last_branch = b_index == len(result.branches) - 1 and not result.no_endpoints
        lead, pad = ("└─ ", "   ") if last_branch else ("├─ ", "│  ")
        entry_chain = "KUBE-NODEPORTS" if branch.kind == "node port" else "KUBE-SERVICES"
        lines.append(f"{lead}{branch.kind} {branch.address}  ({entry_chain}, line {branch.entry.line})")
        for depth, chain in enumerate(branch.chains):
            lines.append(f"{pad}{'   ' * depth}└─ {chain}")
        inner = pad + "   " * len(branch.chains)
        if not branch.endpoints:
            lines.append(f"{inner}└─ (no endpoint chains)")
        for e_index, ep in enumerate(branch.endpoints):
            mark = "└─ " if e_index == len(branch.endpoints) - 1 else "├─ "
            prob = f"p={float(ep.probability):.2f}" if ep.probability else "rest"
            text = f"{inner}{mark}{ep.chain} ({prob}, {ep.share:.0%}) → "
            text += f"DNAT {ep.destination}" if ep.destination else "no DNAT rule"
            if ep.ip in subnets:
                text += f"  [{subnets[ep.ip]}]"
            if ep.packets is not None:
                text += f"  {ep.packets} pkts"
            lines.append(text)
    for n, rule in enumerate(result.no_endpoints):
        lead = "└─ " if n == len(result.no_endpoints) - 1 else "├─ "
        lines.append(f"{lead}REJECT in {rule.table}/{rule.chain}: \"{rule.comment}\"")
    return "\n".join(lines) + "\n"
