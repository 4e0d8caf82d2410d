"""explain-service's engine: trace a service through kube-proxy's rules and name what each endpoint is.

`explain()` returns a typed `Explanation` (the trace, a label per endpoint, the outcome, the hint,
warnings); front ends only render it. It reaches the machine only through the node: iptables-save and
kubectl through `node.commands` (each with a timeout), flannel's leases through `node.etcd(...)`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from wizard import flannel, iptables
from wizard.errors import InputError, WizardError

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import Node

Outcome = Literal["path", "no-endpoints", "no-rules"]
EXIT_CODES: dict[Outcome, int] = {"path": 0, "no-endpoints": 1, "no-rules": 1}
LIVE = "the live rules (iptables-save)"


@dataclass(frozen=True)
class EndpointLabel:
    """What an endpoint IP is: its pod and node (from the API server), the flannel lease holding it (from etcd)."""

    ip: str
    pod: str | None = None  # the pod's name ("?" when the endpoint names no pod)
    node: str | None = None  # the node the pod runs on
    lease: str | None = None  # "node subnet 172.30.38.0/24 (192.168.56.11)"

    def __str__(self) -> str:
        parts = []
        if self.pod is not None:
            parts.append(f"pod {self.pod}" + (f" on {self.node}" if self.node else ""))
        if self.lease:
            parts.append(self.lease)
        return ", ".join(parts)


@dataclass(frozen=True)
class Explanation:
    service: str  # "namespace/name"
    source: str  # where the rules came from: a file name, or LIVE
    trace: iptables.Trace
    outcome: Outcome
    labels: dict[str, EndpointLabel] = field(default_factory=dict)  # endpoint IP -> label
    problem: str = ""  # what is wrong, "" on a path
    hint: str = ""  # what to do about it
    suggestion: str | None = None  # "did you mean" a service the rules do hold
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def label_texts(self) -> dict[str, str]:
        """Endpoint IP -> label text, as `iptables.render` takes it."""
        return {ip: str(label) for ip, label in self.labels.items() if str(label)}


def explain(node: Node, namespace: str, name: str, *, rules: str | None = None, source: str | None = None,
            answers: Answers | None = None, kubeconfig: str | None = None) -> Explanation:
    """Trace `namespace/name` in `rules` (iptables-save text; the live rules when None). With `answers`,
    label each endpoint with the flannel lease holding it; with `kubeconfig`, with its pod and node.
    `source` names `rules` in messages (the dump's file name).

    Raises InputError when the text is not iptables-save output, WizardError when iptables-save fails
    or etcd cannot be read."""
    if rules is None:
        rules, source = _live_rules(node), LIVE
    source = source or "the saved rules"
    try:
        ruleset = iptables.parse(rules)
    except iptables.NotIptablesSave as exc:
        raise InputError(f"{source} is not iptables-save output: {exc}", "save it with `iptables-save > FILE`") from None
    found = iptables.trace(ruleset, namespace, name)
    warnings: list[str] = []
    leases = _lease_labels(node, answers, found.endpoints) if answers is not None else {}
    pods = _endpoint_pods(node, kubeconfig, namespace, name, warnings) if kubeconfig else {}
    ips = [e.rsplit(":", 1)[0] for e in found.endpoints]
    labels = {}
    for ip in dict.fromkeys(ips):
        if ip in pods or ip in leases:
            pod, on = pods.get(ip, (None, None))
            labels[ip] = EndpointLabel(ip, pod, on, leases.get(ip))
    service = f"{namespace}/{name}"
    common = {"service": service, "source": source, "trace": found, "labels": labels, "warnings": warnings}
    if found.complete:
        return Explanation(outcome="path", **common)
    if found.branches or found.no_endpoints:
        why = "kube-proxy rejects it: the service has no endpoints" if found.no_endpoints else "no rule DNATs to a pod"
        return Explanation(outcome="no-endpoints", problem=f"{service} has rules but {why}",
                           hint=f"check that its pods are ready (kubectl get endpoints {name} -n {namespace})", **common)
    suggestion = None
    if "nat" not in ruleset.tables:
        hint = "the dump has no nat table: save it with `iptables-save` (all tables) or `iptables-save -t nat`"
    elif "kube-proxy" in rules and "KUBE-SERVICES" not in rules:
        hint = "kube-proxy may run in nftables mode (table kube-proxy); only iptables mode is traced"
    else:
        close = difflib.get_close_matches(service, iptables.services(ruleset), n=1)
        suggestion = close[0] if close else None
        hint = f"did you mean {suggestion}? " if suggestion else ""
        hint += "check that kube-proxy runs on this node and that the service exists"
    return Explanation(outcome="no-rules", problem=f"no kube-proxy rules for {service} in {source}", hint=hint,
                       suggestion=suggestion, **common)


def _live_rules(node: Node) -> str:
    result = node.commands.run("iptables-save", timeout=15)
    if not result.ok:
        raise WizardError(f"iptables-save failed: {(result.err or result.out).strip() or result.rc}",
                          "run as root on the node, or pass a saved dump with --from FILE")
    return result.out


def _endpoint_pods(node: Node, kubeconfig: str, namespace: str, name: str,
                   warnings: list[str]) -> dict[str, tuple[str, str | None]]:
    """Endpoint IP -> (pod, node) from the API server; on failure a warning and no names (the tree is drawn without)."""
    result = node.commands.run("kubectl", "--kubeconfig", kubeconfig, "--request-timeout=10s", "get",
                               f"endpoints/{name}", "-n", namespace, "-o", "json", timeout=15)
    if not result.ok:
        warnings.append(f"no pod names: kubectl said {(result.err or result.out).strip()[:200]}")
        return {}
    try:
        subsets = json.loads(result.out).get("subsets") or []
    except (ValueError, AttributeError):
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for subset in subsets:
        for address in (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or []):
            if address.get("ip"):
                out[address["ip"]] = ((address.get("targetRef") or {}).get("name", "?"), address.get("nodeName") or None)
    return out


def _lease_labels(node: Node, answers: Answers, endpoints: list[str]) -> dict[str, str]:
    """Endpoint IP -> "node subnet S (PublicIP)" from flannel's leases in etcd."""
    from wizard.node.commands import keep_from_children

    keep_from_children(answers.etcd.password_env)
    store = node.etcd(answers.etcd, answers.etcd_password())
    try:
        leases = store.list(answers.etcd.prefix + "/subnets/")
    finally:
        store.close()
    out = {}
    for endpoint in endpoints:
        ip = endpoint.rsplit(":", 1)[0]
        where = flannel.lease_holding(ip, leases)
        if where:
            out[ip] = where
    return out
