"""A service's path through kube-proxy, whatever mode wrote it: the typed result every mode's reader
returns (`wizard.iptables`, `wizard.nftables`, `wizard.ipvs`) and the one tree every front end draws.

A path has branches, one per way in (cluster IP, external IP, load-balancer IP, node port; one per IP
family), each with the chains it passes and the endpoints it reaches with their share of new
connections; or refusals, what kube-proxy does instead when the service has no endpoints. `tree()`
turns it into nested labels; `render()` prints them as explain-service does, and the TUI's Smoke page
builds its Tree widget from the same nodes, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["iptables", "nftables", "ipvs"]


class NotListing(ValueError):
    """Text its tool would not print, at `line`, for `why`: each mode's reader raises its own kind."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line
        self.why = why
MODES: tuple[Mode, ...] = ("iptables", "nftables", "ipvs")


def host_port(ip: str, port: int | str) -> str:
    """`ip:port`, an IPv6 address in brackets (`[fd00::1]:80`), as kube-proxy, nft and ipvsadm write it."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_host_port(text: str) -> tuple[str, str]:
    """(ip, port) from `ip:port` or `[ip6]:port`; the port is "" when there is none."""
    if text.startswith("["):
        ip, _, rest = text[1:].partition("]")
        return ip, rest.removeprefix(":")
    if text.count(":") > 1:  # a bare IPv6 address: no port
        return text, ""
    ip, _, port = text.partition(":")
    return ip, port


@dataclass
class Endpoint:
    """One endpoint a branch reaches."""

    address: str | None  # the DNAT target `ip:port` (`[ip6]:port`); None when the chain has no DNAT
    share: float  # the fraction of new connections (without affinity) that get this endpoint
    via: str  # the chain or real server it is reached through: KUBE-SEP-…, endpoint-…, "real server"
    pick: str = ""  # how the rules pick it, as written: "p=0.50", "rest", "numgen 0 of 2", "weight 1"
    packets: int | None = None  # the chain's counter, when the dump has counters
    line: int | None = None  # where the dump says so

    @property
    def ip(self) -> str:
        return split_host_port(self.address or "")[0]


@dataclass
class Branch:
    """One way into the service: an address (or a node port) and what it leads to."""

    kind: str  # "cluster IP", "external IP", "load balancer", "node port"
    ip: str | None  # None for a node port: every address the node accepts node ports on
    port: int | None
    protocol: str  # tcp, udp, sctp
    family: int  # 4 or 6
    entry: str  # where the path starts, as the rules name it: "KUBE-SERVICES", "map service-ips", "virtual server"
    line: int | None = None  # the entry's line in the dump
    chains: list[str] = field(default_factory=list)  # the chains passed, in order
    endpoints: list[Endpoint] = field(default_factory=list)
    affinity: str = ""  # session affinity, once for the branch: "ClientIP, 10800 s"
    notes: list[str] = field(default_factory=list)  # what else the rules do on the way (source ranges, local only)

    @property
    def address(self) -> str:
        port = "?" if self.port is None else str(self.port)
        if self.ip is None:
            return f"{port}/{self.protocol}"
        return f"{host_port(self.ip, port)}/{self.protocol}"


@dataclass
class Refusal:
    """What kube-proxy does with a service's traffic when it has no endpoints."""

    kind: str  # as Branch.kind
    address: str  # "10.0.0.46:80/tcp", "3001/tcp"
    verdict: str  # "reject", "drop"
    where: str  # "filter/KUBE-SERVICES", "map no-endpoint-services", ...
    text: str = ""  # the rule's comment
    line: int | None = None


@dataclass
class Path:
    service: str  # "namespace/name"
    mode: Mode
    branches: list[Branch] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        """Every DNAT target a new connection can reach on some branch, sorted: not one that gets no
        share (an IPVS real server at weight 0, draining while its pod terminates)."""
        return sorted({e.address for b in self.branches for e in b.endpoints if e.address and e.share > 0})

    @property
    def complete(self) -> bool:
        """Some branch reaches an endpoint."""
        return bool(self.endpoints)

    @property
    def families(self) -> list[int]:
        return sorted({b.family for b in self.branches})


@dataclass
class ServicePort:
    """One port of a service as kube-proxy programmed it: what `explain-service --list` shows."""

    service: str  # "ns/name"
    port: str  # the port's name, "" when unnamed
    addresses: list[str] = field(default_factory=list)  # "10.254.124.145:8080/tcp": cluster IP, external, LB
    node_ports: list[str] = field(default_factory=list)  # "30554/tcp"
    endpoints: list[str] = field(default_factory=list)  # "172.30.38.2:8080", in the order kube-proxy picks
    rejected: bool = False  # kube-proxy rejects or drops it: the service has no endpoints


# ---------------------------------------------------------------- the tree every front end draws

@dataclass(frozen=True)
class TreeNode:
    label: str
    children: tuple[TreeNode, ...] = ()


def _where(name: str, line: int | None) -> str:
    return f"{name}, line {line}" if line is not None else name


def tree(path: Path, labels: dict[str, str] | None = None) -> TreeNode:
    """The path as nested labels: the service, a node per branch (and per refusal), under it the
    chains passed, under the last the endpoints. `labels` names endpoint IPs (pod, node subnet)."""
    labels = labels or {}
    dual = len(path.families) > 1
    nodes: list[TreeNode] = []
    for branch in path.branches:
        family = f"IPv{branch.family} " if dual else ""
        head = f"{family}{branch.kind} {branch.address}  ({_where(branch.entry, branch.line)})"
        leaves: list[TreeNode] = []
        if branch.affinity:
            leaves.append(TreeNode(f"session affinity {branch.affinity}: a client keeps the endpoint it got first"))
        leaves += [TreeNode(note) for note in branch.notes]
        if not branch.endpoints:
            leaves.append(TreeNode("(no endpoint chains)"))
        for ep in branch.endpoints:
            text = f"{ep.via} ({', '.join(x for x in (ep.pick, f'{ep.share:.0%}') if x)}) → "
            text += f"DNAT {ep.address}" if ep.address else "no DNAT rule"
            if ep.ip in labels:
                text += f"  [{labels[ep.ip]}]"
            if ep.packets is not None:
                text += f"  {ep.packets} pkts"
            leaves.append(TreeNode(text))
        inner: tuple[TreeNode, ...] = tuple(leaves)
        for chain in reversed(branch.chains):  # each chain holds the next; the last holds the endpoints
            inner = (TreeNode(chain, inner),)
        nodes.append(TreeNode(head, inner))
    for refusal in path.refusals:
        said = f': "{refusal.text}"' if refusal.text else ""
        nodes.append(TreeNode(f"{refusal.verdict.upper()} {refusal.kind} {refusal.address} in {_where(refusal.where, refusal.line)}{said}"))
    title = path.service if path.mode == "iptables" else f"{path.service}  (kube-proxy {path.mode} mode)"
    return TreeNode(title, tuple(nodes))


def render(node: TreeNode) -> str:
    """The tree as text, one line per node, with box-drawing branches."""
    lines = [node.label]

    def walk(children: tuple[TreeNode, ...], pad: str) -> None:
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{pad}{'└─ ' if last else '├─ '}{child.label}")
            walk(child.children, pad + ("   " if last else "│  "))

    walk(node.children, "")
    return "\n".join(lines) + "\n"
