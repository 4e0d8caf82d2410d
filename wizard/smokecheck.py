"""Sub-steps 6 and 7 of the service smoke test, usable on their own: kube-proxy's rules for the
service, traced from the live `iptables-save`, and HTTP through the cluster IP and the node port,
with which endpoint served each answer (from the response, else from the KUBE-SEP counters)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wizard import iptables
from wizard.errors import Interrupted
from wizard.steps import Note

if TYPE_CHECKING:
    from collections.abc import Callable

    from wizard.node import NodeLike

LIKELY_CAUSES = (
    "iptables FORWARD policy DROP (docker ≥ 1.13 sets it; `iptables -P FORWARD ACCEPT`), "
    "an MTU mismatch between docker0 and flannel, kube-proxy not running, "
    "or UDP 8472 (vxlan) blocked between nodes"
)


def live_rules(node: NodeLike, counters: bool = False) -> iptables.Ruleset:
    args = ["iptables-save", "-c"] if counters else ["iptables-save"]
    result = node.commands.run(*args, timeout=15)
    if not result.ok:
        raise iptables.NotIptablesSave(0, (result.err or result.out).strip() or f"iptables-save exit {result.rc}")
    return iptables.parse(result.out)


def rules_check(node: NodeLike, namespace: str, name: str) -> tuple[Note, iptables.Trace | None]:
    try:
        ruleset = live_rules(node)
    except iptables.NotIptablesSave as exc:
        return Note("failed", f"cannot read the iptables rules: {exc.why}", "run as root"), None
    found = iptables.trace(ruleset, namespace, name)
    service = f"{namespace}/{name}"
    if found.complete:
        return Note("ok", f"kube-proxy routes {service} to {len(found.endpoints)} endpoint(s)",
                    iptables.render(found)), found
    if found.no_endpoints:
        return Note("failed", f"kube-proxy rejects {service}: it has no endpoints",
                    "its pods are not ready; see `kubectl get endpoints`"), found
    tables = node.commands.run("nft", "list", "tables", timeout=10)
    if tables.ok and "kube-proxy" in tables.out:
        return Note("failed", f"no iptables rules for {service}: kube-proxy runs in nftables mode here (table kube-proxy)",
                    "only iptables mode is traced; see `nft list table ip kube-proxy`"), found
    return Note("failed", f"no kube-proxy rules for {service}",
                "check that kube-proxy runs on this node (iptables mode) and watches the API server"), found


@dataclass
class Target:
    label: str  # "cluster IP", "node port"
    host: str
    port: int
    answered: int = 0
    tries: int = 0
    served: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def _sep_packets(node: NodeLike, found: iptables.Trace) -> dict[str, int]:
    try:
        ruleset = live_rules(node, counters=True)
    except iptables.NotIptablesSave:
        return {}
    out: dict[str, int] = {}
    for rule in ruleset.all_rules():
        if rule.table == "nat" and rule.target.startswith("KUBE-SEP-") and rule.packets is not None:
            out[rule.target] = out.get(rule.target, 0) + rule.packets
    return out


def traffic_check(node: NodeLike, found: iptables.Trace, node_address: str, tries: int = 6,
                  timeout: float = 2.0, interrupted: Callable[[], bool] = lambda: False) -> tuple[Note, list[Target]]:
    """HTTP to each of the service's addresses; raises Interrupted between requests when asked to stop."""
    targets: list[Target] = []
    for branch in found.branches:
        port = branch.entry.option("--dport", "--destination-port")
        if not port:
            continue
        if branch.kind == "cluster IP":
            host = (branch.entry.option("-d", "--destination") or "").removesuffix("/32")
            targets.append(Target("cluster IP", host, int(port)))
        elif branch.kind == "node port":
            targets.append(Target("node port", node_address, int(port)))
    sep_of = {e.destination: e.chain for b in found.branches for e in b.endpoints if e.destination}
    for target in targets:
        before = _sep_packets(node, found)
        unnamed = 0
        for _ in range(tries):
            if interrupted():
                raise Interrupted()
            target.tries += 1
            ok, text = node.http.get(target.url, timeout)
            if not ok:
                target.errors[text] += 1
                continue
            target.answered += 1
            who = next((ep for ep in sep_of if ep.rsplit(":", 1)[0] in text), None)
            if who:
                target.served[who] += 1
            else:
                unnamed += 1
        if unnamed:  # the answers do not say who sent them: the SEP rules' counters do
            after = _sep_packets(node, found)
            for endpoint, chain in sep_of.items():
                gained = after.get(chain, 0) - before.get(chain, 0)
                if gained > 0:
                    target.served[endpoint] += gained
    total = sum(t.tries for t in targets)
    answered = sum(t.answered for t in targets)
    lines = []
    for t in targets:
        served = ", ".join(f"{ep} ×{n}" for ep, n in sorted(t.served.items())) or "none named"
        line = f"{t.label} {t.host}:{t.port}: {t.answered}/{t.tries} answered; served by {served}"
        if t.errors:
            line += "; " + ", ".join(f"{err} ×{n}" for err, n in t.errors.most_common())
        lines.append(line)
    silent = sorted(set(sep_of) - {ep for t in targets for ep in t.served})
    if silent and answered:
        lines.append(f"never answered: {', '.join(silent)}")
    if not targets:
        return Note("failed", "no cluster IP or node port to send traffic to", "see the kube-proxy rules sub-step"), targets
    if answered == 0:
        return Note("failed", f"no answer through the service ({total} tries)", "likely causes: " + LIKELY_CAUSES), targets
    if answered < total or silent:
        return Note("warn", f"{answered} of {total} requests answered", "\n".join(lines)), targets
    return Note("ok", f"{answered} of {total} requests answered by {len(sep_of) - len(silent)} endpoint(s)",
                "\n".join(lines)), targets
