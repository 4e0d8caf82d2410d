"""Sub-steps 6 and 7 of the service smoke test, usable on their own: kube-proxy's rules for the
service, traced from the live rules in whichever mode kube-proxy runs (explain-service's engine), and
HTTP through the cluster IP(s) and the node port, with which endpoint served each answer (from the
response, else, in iptables mode, from the KUBE-SEP counters).

Given where the pods run (`PodPlace`), the traffic check also asks every pod straight at its IP
(the pod network across nodes, without kube-proxy), names the pod and node behind every answer, and
hands a pod on another node that never answers to a mesh analysis for that node (`explain`)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from wizard import iptables, proxypath
from wizard.errors import Interrupted, WizardError
from wizard.steps import Note

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from wizard.node import Node, NodeLike
    from wizard.steps import Check

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


def rules_check(node: NodeLike, namespace: str, name: str, kubeconfig: str | None = None,
                service: dict[str, Any] | None = None,
                mode: proxypath.Mode | None = None) -> tuple[Note, proxypath.Path | None]:
    """Sub-step 6: the service's path through kube-proxy's live rules, in the mode kube-proxy runs
    (explain-service's engine; `kubeconfig` lets it read kube-proxy's ConfigMap and, in IPVS mode, the
    service's addresses; `service`, the Service object, gives them without asking; `mode`, known from an
    earlier look, is read alone). The note's tree is the path as explain-service draws it."""
    from wizard.explain import explain

    try:
        found = explain(cast("Node", node), namespace, name, mode=mode, kubeconfig=kubeconfig, name_pods=False,
                        service_object=service)
    except WizardError as exc:  # a listing that failed, or that its tool would not print
        return Note("failed", f"cannot read kube-proxy's rules: {exc.what}", exc.fix), None
    path = found.trace
    service_name = f"{namespace}/{name}"
    mode = f" ({path.mode} mode)" if path.mode != "iptables" else ""
    tree = found.tree()
    if found.outcome == "path":
        return Note("ok", f"kube-proxy routes {service_name} to {len(path.endpoints)} endpoint(s){mode}",
                    proxypath.render(tree), tree=tree), path
    if found.outcome == "no-endpoints" and path.refusals:
        verdicts = " and ".join(sorted({r.verdict + "s" for r in path.refusals}))
        return Note("failed", f"kube-proxy {verdicts} {service_name}: it has no endpoints{mode}",
                    "its pods are not ready; see `kubectl get endpoints`", tree=tree), path
    if found.outcome == "no-endpoints":
        return Note("failed", f"kube-proxy has rules for {service_name} but none leads to a pod{mode}",
                    proxypath.render(tree), tree=tree), path
    return Note("failed", found.problem, found.hint), path


# ---------------------------------------------------------------- the cluster's nodes and pods

HOSTNAME_LABEL = "kubernetes.io/hostname"
# taints a pod without tolerations cannot land on (the smoke test's pods tolerate nothing)
BLOCKING_TAINTS = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class ClusterNode:
    """A node as `kubectl get nodes -o json` gives it: whether the smoke test's pods could land there."""

    name: str
    address: str | None  # the InternalIP: what pods' status.hostIP names
    ready: bool
    why_not: str = ""  # "" when a pod can be scheduled here; else "NotReady", "cordoned", "tainted ..."

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.why_not

    def __str__(self) -> str:
        return f"{self.name} ({self.address})" if self.address else self.name


def parse_nodes(items: list[dict[str, Any]]) -> list[ClusterNode]:
    out = []
    for item in items:
        if item.get("kind") != "Node":
            continue
        status = item.get("status") or {}
        spec = item.get("spec") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        address = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        why = ""
        if not ready:
            why = "NotReady"
        elif spec.get("unschedulable"):
            why = "cordoned"
        else:
            taints = [t for t in spec.get("taints") or [] if t.get("effect") in BLOCKING_TAINTS]
            if taints:
                why = "tainted " + ", ".join(f"{t.get('key')}:{t.get('effect')}" for t in taints)
        out.append(ClusterNode(item.get("metadata", {}).get("name", "?"), address, ready, why))
    return out


@dataclass(frozen=True)
class PodPlace:
    """Where one endpoint's pod runs, from its Endpoints address and Pod (spec.nodeName, status.hostIP)."""

    ip: str
    pod: str | None = None  # the pod's name
    node: str | None = None
    host_ip: str | None = None
    here: bool = False  # on this node: its IP is in this node's FLANNEL_SUBNET

    def node_text(self) -> str:
        if self.node:
            return self.node
        if self.host_ip:
            return f"the node at {self.host_ip}"
        return "this node" if self.here else "another node"

    def __str__(self) -> str:
        return f"pod {self.ip} on {self.node_text()}"


def _names(text: str, ip: str) -> bool:
    """Whether a response names `ip` — as a whole address: 172.30.1.2 is not in 'pod 172.30.1.25', nor
    fd00:10::8 in 'fd00:10::8a'."""
    if ":" in ip:
        return re.search(rf"(?<![0-9A-Fa-f:]){re.escape(ip)}(?![0-9A-Fa-f:])", text) is not None
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d])", text) is not None


@dataclass
class Target:
    label: str  # "cluster IP", "node port", "pod" (straight to a pod's IP, no kube-proxy on the way)
    host: str
    port: int
    answered: int = 0
    tries: int = 0
    served: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    pod: PodPlace | None = None  # for a "pod" target: whose IP it is

    @property
    def url(self) -> str:
        return f"http://{proxypath.host_port(self.host, self.port)}/"


def _sep_packets(node: NodeLike, found: proxypath.Path) -> dict[str, int]:
    """Packets per KUBE-SEP chain (iptables mode's counters); nothing in the other modes, whose rules
    kube-proxy writes without counters."""
    if found.mode != "iptables":
        return {}
    try:
        ruleset = live_rules(node, counters=True)
    except iptables.NotIptablesSave:
        return {}
    out: dict[str, int] = {}
    for rule in ruleset.all_rules():
        if rule.table == "nat" and rule.target.startswith("KUBE-SEP-") and rule.packets is not None:
            out[rule.target] = out.get(rule.target, 0) + rule.packets
    return out


def traffic_check(node: NodeLike, found: proxypath.Path, node_address: str, tries: int = 6,
                  timeout: float = 2.0, interrupted: Callable[[], bool] = lambda: False,
                  pods: Sequence[PodPlace] = (), direct_tries: int = 2,
                  explain: Callable[[PodPlace], list[Check]] | None = None) -> tuple[Note, list[Target]]:
    """HTTP to each of the service's addresses, then (given `pods`) to each pod's own IP; raises
    Interrupted between requests when asked to stop.

    A pod on another node that never answers at its own IP, while every pod on this node does, is the
    overlay's failure, not kube-proxy's: `explain` (the mesh analysis) says which hop to that node fails."""
    targets: list[Target] = []
    for branch in found.branches:
        if branch.port is None:
            continue
        if branch.kind == "cluster IP" and branch.ip:
            label = f"cluster IP (IPv{branch.family})" if len(found.families) > 1 else "cluster IP"
            targets.append(Target(label, branch.ip, branch.port))
        elif branch.kind == "node port" and ((":" in node_address) == (branch.family == 6)):
            targets.append(Target("node port", node_address, branch.port))
    sep_of = {e.address: e.via for b in found.branches for e in b.endpoints if e.address}
    place = {p.ip: p for p in pods}
    unknown = 0  # answers that named no pod where no counters say who sent them (nftables, IPVS)
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
            who = next((ep for ep in sep_of if _names(text, proxypath.split_host_port(ep)[0])), None)
            if who:
                target.served[who] += 1
            else:
                unnamed += 1
        if unnamed and found.mode != "iptables":
            unknown += unnamed
        elif unnamed:  # the answers do not say who sent them: the SEP rules' counters do
            after = _sep_packets(node, found)
            for endpoint, chain in sep_of.items():
                gained = after.get(chain, 0) - before.get(chain, 0)
                if gained > 0:
                    target.served[endpoint] += gained
    service_targets = list(targets)
    # each pod at its own IP: kube-proxy's random choice may skip a pod in a few tries, this may not
    for endpoint in sep_of:
        ip, port = proxypath.split_host_port(endpoint)
        if ip not in place or not port.isdigit():
            continue
        target = Target("pod", ip, int(port), pod=place[ip])
        targets.append(target)
        while target.tries < direct_tries and not target.answered:
            if interrupted():
                raise Interrupted()
            target.tries += 1
            ok, text = node.http.get(target.url, timeout)
            if ok:
                target.answered += 1
                target.served[endpoint] += 1
            else:
                target.errors[text] += 1
    direct = [t for t in targets if t.pod is not None]

    total = sum(t.tries for t in service_targets)
    answered = sum(t.answered for t in service_targets)
    lines = [_line(t, place) for t in targets]
    via_service = {ep for t in service_targets for ep in t.served}
    silent = sorted(set(sep_of) - via_service - {ep for t in direct for ep in t.served})
    if unknown:
        # who served is not known, so an endpoint not named is not one that never answered
        lines.append(f"{unknown} answer(s) named no pod, and kube-proxy's {found.mode} mode keeps no count per "
                     "endpoint: which endpoint served them is not known")
        silent = []
    affinity = next((b.affinity for b in found.branches if b.affinity), "")
    pinned: list[str] = []
    if silent and answered and affinity:
        # ClientIP affinity: this node is one client, so its requests keep the endpoint they got first
        lines.append(f"session affinity {affinity} keeps this node's requests on the endpoint each address gave "
                     f"first; not asked: {', '.join(silent)}")
        pinned, silent = silent, []
    elif silent and answered:
        lines.append(f"never answered: {', '.join(silent)}")
    if not service_targets:
        return Note("failed", "no cluster IP or node port to send traffic to", "see the kube-proxy rules sub-step"), targets
    lost = [t for t in direct if not t.answered and t.pod is not None and not t.pod.here]
    if lost and all(t.answered for t in direct if t.pod is not None and t.pod.here):
        return _lost(lost, lines, explain), targets
    if answered == 0:
        return Note("failed", f"no answer through the service ({total} tries)",
                    "likely causes: " + LIKELY_CAUSES + ("\n" + "\n".join(lines) if direct else "")), targets
    dead = [t for t in direct if not t.answered and not any(proxypath.split_host_port(ep)[0] == t.host for s in service_targets
                                                              for ep in s.served)]
    if dead:  # a pod that answered neither through the service nor at its own IP
        first = dead[0]
        err = first.errors.most_common(1)[0][0] if first.errors else "no answer"
        names = ", ".join(str(t.pod) for t in dead)
        return Note("failed", f"{names} never answered ({err})", "\n".join(lines)), targets
    if answered < total or silent:
        return Note("warn", f"{answered} of {total} requests answered", "\n".join(lines)), targets
    if unknown:
        message = f"{answered} of {total} requests answered" + (
            f", {answered - unknown} of them naming {len(via_service)} endpoint(s)" if via_service else
            " (the answers do not name their pod)")
        return Note("ok", message, "\n".join(lines)), targets
    message = f"{answered} of {total} requests answered by {len(via_service)} endpoint(s)"
    ips = (proxypath.split_host_port(ep)[0] for ep in via_service)
    nodes = sorted({place[ip].node or "" for ip in ips if ip in place} - {""})
    if len(nodes) > 1:  # the answers crossed nodes: say so where the operator looks first
        message += f" on {len(nodes)} nodes ({', '.join(nodes)})"
    if pinned:
        message += f" (session affinity {affinity}: one client, one endpoint)"
    skipped = sorted(set(sep_of) - via_service - set(pinned))
    if skipped:  # answered at its own IP, while kube-proxy's random choice never picked it in these tries
        message += f"; {', '.join(skipped)} only directly"
    return Note("ok", message, "\n".join(lines)), targets


def _line(t: Target, place: dict[str, PodPlace]) -> str:
    """One target's requests: who answered each time (pod and node when known), and what the rest got."""
    def who(endpoint: str) -> str:
        ip = proxypath.split_host_port(endpoint)[0]
        return str(place[ip]) if ip in place else endpoint

    if t.pod is not None:
        name = f" ({t.pod.pod})" if t.pod.pod else ""
        head = f"pod {proxypath.host_port(t.host, t.port)}{name} on {t.pod.node_text()}, directly: "
        tries = "1 try" if t.tries == 1 else f"{t.tries} tries"
        line = head + (f"answered ({tries})" if t.answered else f"no answer in {tries}")
    else:
        served = ", ".join(f"{who(ep)} ×{n}" for ep, n in sorted(t.served.items())) or "none named"
        line = f"{t.label} {proxypath.host_port(t.host, t.port)}: {t.answered}/{t.tries} answered → {served}"
    if t.errors:
        line += "; " + ", ".join(f"{err} ×{n}" for err, n in t.errors.most_common())
    return line


def _lost(lost: list[Target], lines: list[str], explain: Callable[[PodPlace], list[Check]] | None) -> Note:
    """Pods on other nodes that never answered at their own IPs: the mesh analysis of each such node
    (once per node) names the first hop that fails."""
    analysed: dict[str, list[Check] | str] = {}
    for t in lost:
        assert t.pod is not None
        key = t.pod.node or t.pod.host_ip or t.pod.ip
        if key in analysed or explain is None:
            continue
        try:
            analysed[key] = explain(t.pod)
        except WizardError as exc:
            analysed[key] = f"the mesh analysis could not run: {exc.what}"
    first = lost[0].pod
    assert first is not None
    name = f" ({first.pod})" if first.pod else ""
    message = f"pod {first.ip}{name} on {first.node_text()} never answered"
    out = []
    for key, checks in analysed.items():
        out.append(f"mesh analysis for {key}:")
        if isinstance(checks, str):
            out.append(f"  {checks}")
            continue
        out += [f"  {_check_text(c)}" for c in checks]
    said = analysed.get(first.node or first.host_ip or first.ip)
    if isinstance(said, list) and not said:
        # explain_pod has nothing to say when no other node's lease holds the IP (or no lease is here yet)
        out.append("  no other node's lease holds this pod's IP: the overlay has no path to check")
        message += "; no other node's lease holds its IP"
    elif isinstance(said, list):
        bad = next((c for c in said if c.status == "failed"), None) or next((c for c in said if c.status == "warn"), None)
        if bad is not None:
            message += f": {bad.message}"
        else:
            # the mesh probes stop at the peer's bridge (an address of the node: INPUT); a pod is one FORWARD further
            node = first.node_text()
            message += (f"; the mesh to {node} passes up to its bridge: check {node}'s FORWARD chain "
                        "(docker ≥ 1.13 sets policy DROP) and the pod itself")
    elif isinstance(said, str):
        message += f" ({said})"
    if len(lost) > 1:
        message += f" (and {len(lost) - 1} more pod(s) on other nodes)"
    return Note("failed", message, "\n".join(out + lines))


def _check_text(c: Check) -> str:
    where = " · ".join(x for x in (c.subject, c.hop) if x)  # the peer's PublicIP, and which hop (mesh.HOPS)
    text = f"{c.status}: " + (f"[{where}] " if where else "") + c.message
    if c.detail:
        text += "\n    " + c.detail.replace("\n", "\n    ")
    return text
