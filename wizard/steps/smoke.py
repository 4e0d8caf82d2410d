"""smoke: the service smoke test of seed-procedure §4–5. nginx pods behind a NodePort service, and
proof that traffic to the cluster IP and to this node's port reaches them through kube-proxy.

With two or more schedulable nodes the pods are spread over them (pod anti-affinity on the pods' own
labels, one per hostname), so the traffic crosses nodes: flannel exists for exactly that. Each pod is
also asked at its own IP, and a pod on another node that never answers goes to the mesh analysis of
that node (wizard.steps.mesh.explain_pod), whose first failing hop the traffic sub-step names.

Eight sub-steps, each with its own live status: cluster reachable, deploy, expose, endpoints
ready, pod network, kube-proxy rules, traffic, cleanup. The Deployment and Service are one journaled
change (shown in Review, undone by `undo` after a crash), labelled as the wizard's and with the journal
entry's id; cleanup reverses that change through the journal unless `cleanup: false`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import flannel, kubectl, smokecheck
from wizard.changes import KubeObjects
from wizard.errors import Interrupted, WizardError
from wizard.events import StepEvent, SubStepInfo
from wizard.proxypath import host_port, split_host_port
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers, SmokeTest
    from wizard.proxypath import TreeNode
    from wizard.steps import Check, Context

NAME = "smoke"
MANAGED_BY = {"app.kubernetes.io/managed-by": "flannel-wizard"}
SUBSTEPS = ("cluster reachable", "deploy", "expose", "endpoints ready", "pod network", "kube-proxy rules",
            "traffic", "cleanup")


def substep(title: str) -> SubStepInfo:
    return SubStepInfo(SUBSTEPS.index(title) + 1, len(SUBSTEPS), title)


class Stop(Exception):
    """A sub-step failed: the rest are skipped (cleanup still runs)."""


@dataclass
class Facts:
    enabled: bool
    cluster: Note | None = None  # sub-step 1's outcome
    existing: list[dict[str, Any]] = field(default_factory=list)  # objects already there with our names
    nodes: list[smokecheck.ClusterNode] = field(default_factory=list)  # empty: not known (not listed, or no cluster)

    @property
    def schedulable(self) -> list[smokecheck.ClusterNode]:
        return [n for n in self.nodes if n.schedulable]


def _emit_sub(ctx: Context, title: str, status: Any, message: str, detail: str = "", elapsed: float = 0.0,
              tree: TreeNode | None = None) -> None:
    info = substep(title)
    text = f"{info.index}/{info.total} {title}" + (f": {message}" if message else "")
    ctx.emit(StepEvent(NAME, status, text, detail, elapsed, kind="substep", substep=info, tree=tree))


def inspect(ctx: Context) -> Facts:
    a = ctx.answers.smoke_test
    if not a.enabled:
        return Facts(False)
    t0 = time.monotonic()
    _emit_sub(ctx, "cluster reachable", "running", "")
    note = _cluster(ctx)
    if note.status == "failed" and ctx.dry_run and not ctx.checking:
        # like an unreachable etcd: a plan made before the cluster is up still lists what apply would do
        note = Note("warn", note.message, note.detail + "; the plan assumes the cluster answers when apply runs")
    nodes: list[smokecheck.ClusterNode] = []
    if note.status == "ok":
        nodes, note = _nodes(ctx, note)
    _emit_sub(ctx, "cluster reachable", note.status, note.message, note.detail, time.monotonic() - t0)
    if note.status != "ok":
        return Facts(True, note)
    found = _kubectl(ctx, "get", f"deployment/{a.deployment}", f"service/{a.service}", "-n", a.namespace,
                     "-o", "json", "--ignore-not-found")
    if not found.ok:
        return Facts(True, Note("failed", f"cannot look for existing objects: {kubectl.said(found)}",
                                "check the kubeconfig's permissions"))
    return Facts(True, note, kubectl.items(found), nodes)


def _nodes(ctx: Context, note: Note) -> tuple[list[smokecheck.ClusterNode], Note]:
    """The cluster's nodes, for spreading the pods. Listing nodes is cluster-scoped and a namespaced
    kubeconfig may not have it: then the test runs as on one node, and the detail says why."""
    got = _kubectl(ctx, "get", "nodes", "-o", "json")
    if not got.ok:
        return [], Note(note.status, note.message,
                        f"cannot list the nodes ({kubectl.said(got)}): the pods are not spread over nodes")
    nodes = smokecheck.parse_nodes(kubectl.items(got))
    usable = [n for n in nodes if n.schedulable]
    detail = "\n".join(f"node {n}: " + ("schedulable" if n.schedulable else f"{n.why_not}, not counted")
                       for n in nodes)
    message = note.message
    if len(usable) > 1:  # one node changes nothing, so its message stays as it was
        message += f"; {len(usable)} schedulable nodes: {', '.join(n.name for n in usable)}"
    return nodes, Note(note.status, message, detail)


def _cluster(ctx: Context) -> Note:
    result = _kubectl(ctx, "version", "-o", "json")
    if result.rc == 127:
        return Note("failed", "kubectl not found", "install kubectl on this node, or set smoke_test.enabled: false")
    server = kubectl.first(result).get("serverVersion", {}) if result.out.strip() else {}
    if not server:
        return Note("failed", f"no Kubernetes API server answered: {kubectl.said(result)}",
                    "check smoke_test.kubeconfig (or ~/.kube/config) and that the API server runs")
    return Note("ok", f"API server {server.get('gitVersion', '?')}")


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    a = answers.smoke_test
    if not facts.enabled:
        result.note("skipped", "skipped: smoke_test.enabled is false")
        return result
    if facts.cluster is not None and facts.cluster.status != "ok":
        result.note(facts.cluster.status, facts.cluster.message, facts.cluster.detail)
        if facts.cluster.status == "failed":
            return result
    replace = []
    for item in facts.existing:
        labels = item.get("metadata", {}).get("labels") or {}
        kind = item.get("kind", "object").lower()
        if labels.get("app.kubernetes.io/managed-by") != "flannel-wizard":
            result.note("failed", f"{kind} {item['metadata']['name']} already exists in {a.namespace} and was "
                        "not created by flannel-wizard; refusing to touch it",
                        "choose other names in smoke_test (deployment, service), or remove it yourself")
            return result
        replace.append(f"{kind}/{item['metadata']['name']}")
    if replace:
        result.note("ok", f"replaces the wizard's earlier {' and '.join(replace)}")
    after = "deleted after the test" if a.cleanup else "kept afterwards (cleanup: false; `flannel-wizard undo` removes them)"
    spread = spreading(a, len(facts.schedulable))
    across = ""
    if spread is not None:
        names = ", ".join(n.name for n in facts.schedulable)
        across = (f", one pod per node over {names} ({spread} pod anti-affinity on {smokecheck.HOSTNAME_LABEL})"
                  if spread == "required" else
                  f", spread over {names} ({spread} pod anti-affinity: {a.replicas} pods, {len(facts.schedulable)} nodes)")
    result.note("ok", f"{a.replicas} × {a.image} behind NodePort service {a.service}:{a.service_port} in {a.namespace}"
                f"{across}, traffic through kube-proxy, then {after}")
    docs = manifest(a, len(facts.schedulable))["items"]
    result.add(KubeObjects(a.namespace, docs, a.kubeconfig, why="the smoke test's pods and service",
                           temporary=a.cleanup, replace=replace, substep=substep("deploy")))
    return result


def _kubectl(ctx: Context, *args: str, input: str | None = None) -> Any:
    return kubectl.run(ctx.node, ctx.answers.smoke_test.kubeconfig, *args, input=input)


def spreading(a: SmokeTest, nodes: int) -> str | None:
    """How the pods are kept apart on `nodes` schedulable nodes: None (one node, or one pod: nothing to
    spread), "required" when every pod can have a node of its own — so a pod that cannot is Pending
    with the scheduler's reason instead of quietly sharing a node and leaving the cross-node path
    untested — and "preferred" when there are more pods than nodes (required would leave the extra
    pods Pending for ever: no node may hold two)."""
    if nodes < 2 or a.replicas < 2:
        return None
    return "required" if a.replicas <= nodes else "preferred"


def manifest(a: SmokeTest, nodes: int = 1) -> dict[str, Any]:
    labels = dict(a.labels)
    owned = {**labels, **MANAGED_BY}
    pod_spec: dict[str, Any] = {"containers": [{"name": a.deployment, "image": a.image,
                                                "ports": [{"containerPort": a.container_port}]}]}
    spread = spreading(a, nodes)
    if spread is not None:
        term = {"labelSelector": {"matchLabels": labels}, "topologyKey": smokecheck.HOSTNAME_LABEL}
        pod_spec["affinity"] = {"podAntiAffinity": (
            {"requiredDuringSchedulingIgnoredDuringExecution": [term]} if spread == "required" else
            {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": a.deployment, "namespace": a.namespace, "labels": owned},
        "spec": {
            "replicas": a.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": owned},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": a.service, "namespace": a.namespace, "labels": owned},
        "spec": {"type": "NodePort", "selector": labels,
                 "ports": [{"port": a.service_port, "targetPort": a.container_port, "protocol": "TCP"}]},
    }
    return {"apiVersion": "v1", "kind": "List", "items": [deployment, service]}


def _selector(a: SmokeTest) -> str:
    return ",".join(f"{k}={v}" for k, v in a.labels.items())


# ---------------------------------------------------------------- the run


class Run:
    def __init__(self, ctx: Context, nodes: list[smokecheck.ClusterNode] | None = None) -> None:
        self.ctx = ctx
        self.a = ctx.answers.smoke_test
        self.nodes = nodes or []
        self.results: list[tuple[str, Note]] = []
        self.service: dict[str, Any] = {}
        self.endpoints: list[str] = []
        # each endpoint's pod, by pod IP: its name, node and host IP (sub-step 4), and whether it is on
        # this node (sub-step 5)
        self.placement: dict[str, smokecheck.PodPlace] = {}
        self.trace: Any = None

    def sub(self, title: str, fn: Callable[[Callable[[str], None]], Note]) -> Note:
        t0 = time.monotonic()
        _emit_sub(self.ctx, title, "running", "")
        try:
            note = fn(lambda progress: _emit_sub(self.ctx, title, "running", progress))
        except WizardError as exc:
            if isinstance(exc, Interrupted):
                _emit_sub(self.ctx, title, "failed", "interrupted", "", time.monotonic() - t0)
                raise
            note = Note("failed", exc.what, exc.fix)
        _emit_sub(self.ctx, title, note.status, note.message, note.detail, time.monotonic() - t0, note.tree)
        self.results.append((title, note))
        if note.status == "failed" and title != "cleanup":
            raise Stop()
        return note

    def pause(self, seconds: float) -> None:
        """Wait between polls, answering an interrupt within a fraction of a second."""
        deadline = time.monotonic() + seconds
        while True:
            if self.ctx.interrupted():
                raise Interrupted()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

    # 3
    def expose(self, progress: Callable[[str], None]) -> Note:
        got = _kubectl(self.ctx, "get", f"service/{self.a.service}", "-n", self.a.namespace, "-o", "json")
        if not got.ok:
            return Note("failed", f"cannot read service {self.a.service}: {kubectl.said(got)}")
        self.service = next((i for i in kubectl.items(got) if i.get("kind") == "Service"), {})
        spec = self.service.get("spec", {})
        ports = spec.get("ports") or [{}]
        if not spec.get("clusterIP") or not ports[0].get("nodePort"):
            return Note("failed", "the service came back without a cluster IP or node port", json.dumps(spec)[:300])
        return Note("ok", f"service {self.a.service}: cluster IP {spec['clusterIP']}:{ports[0].get('port')}, "
                    f"node port {ports[0]['nodePort']}")

    # 4
    def ready(self, progress: Callable[[str], None]) -> Note:
        a = self.a
        deadline = time.monotonic() + a.timeout_s
        pods: list[dict[str, Any]] = []
        shown = -1
        while True:
            got = _kubectl(self.ctx, "get", "pods,endpoints", "-l", _selector(a), "-n", a.namespace, "-o", "json")
            if not got.ok:
                return Note("failed", f"cannot read pods and endpoints: {kubectl.said(got)}")
            items = kubectl.items(got)
            pods = [i for i in items if i.get("kind") == "Pod"]
            ready = []
            addresses = []
            for item in items:
                if item.get("kind") == "Endpoints" and item.get("metadata", {}).get("name") == a.service:
                    for subset in item.get("subsets") or []:
                        ports = subset.get("ports") or [{}]
                        ready += [host_port(addr["ip"], ports[0].get("port", a.container_port))
                                  for addr in subset.get("addresses") or []]
                        addresses += subset.get("addresses") or []
            self.endpoints = sorted(ready)
            if len(ready) >= a.replicas:
                self.placement = _placement(addresses, pods)
                detail = "\n".join(f"{ep}: {_where(self.placement.get(split_host_port(ep)[0]))}" for ep in self.endpoints)
                return Note("ok", f"{len(ready)}/{a.replicas} ready: {', '.join(self.endpoints)}", detail)
            if len(ready) != shown:  # a line when the count moves, not one per poll
                shown = len(ready)
                progress(f"{shown}/{a.replicas} ready")
            if time.monotonic() > deadline:
                break
            self.pause(min(1.0, max(0.0, deadline - time.monotonic())))
        return Note("failed", f"{len(self.endpoints)}/{a.replicas} ready after {a.timeout_s:g}s",
                    "\n".join(_why_not_ready(p) for p in pods if not _pod_ready(p)) or "no pods were created")

    # 5
    def pod_network(self, progress: Callable[[str], None]) -> Note:
        from wizard.steps.etcd import in_force

        ips = [ipaddress.ip_address(split_host_port(e)[0]) for e in self.endpoints]
        # an IPv6 cluster's Endpoints hold IPv6 pod IPs: flannel's IPv6Network and its IPv6 subnet hold them
        six = bool(ips) and ips[0].version == 6
        config = in_force(self.ctx)
        if six and not config.get("IPv6Network"):
            return Note("failed", f"the endpoints are IPv6 ({', '.join(map(str, ips))}), and flannel's config has no "
                        "IPv6Network", "set network.ipv6_cidr (flannel's EnableIPv6), or give the service IPv4 first")
        network = ipaddress.ip_network(config["IPv6Network"] if six else config["Network"])
        outside = [str(ip) for ip in ips if ip not in network]
        if outside:
            return Note("failed", f"endpoint(s) {', '.join(outside)} are outside the flannel network {network}",
                        "the pods do not use flannel's subnets: check docker's --bip (docker step) or the CNI config")
        leases: list[tuple[str, str]] = []
        lines = []
        try:
            leases = self.ctx.store().list(self.ctx.answers.etcd.prefix + "/subnets/")
        except WizardError as exc:
            lines.append(f"cannot read the leases: {exc.what}")
        index = flannel.LeaseIndex(leases)  # once: a look-up per endpoint, not a pass over every lease
        text = self.ctx.node.files.read_text(self.ctx.answers.flanneld.subnet_file)
        mine = flannel.parse_env(text).get("FLANNEL_IPV6_SUBNET" if six else "FLANNEL_SUBNET", "") if text else ""
        this = None if mine else self._this_node()  # only needed without subnet.env
        for ip in ips:
            place = self.placement.get(str(ip)) or smokecheck.PodPlace(str(ip))
            # flannel's view decides "this node": the pod's IP in this node's lease; without subnet.env,
            # the API server's (the pod's node is the one whose InternalIP this node has)
            here = ip in ipaddress.ip_interface(mine).network if mine else (
                this is not None and place.node == this.name)
            self.placement[str(ip)] = place = dataclasses.replace(place, here=here)
            lines.append(f"{ip}: {index.holding(str(ip)) or 'no lease holds it'}; {_where(place)}")
        here_ips = [p for p in self.placement.values() if p.here]
        if here_ips:
            summary = f"all {len(ips)} in {network}; {len(here_ips)} on this node's FLANNEL_SUBNET {mine}"
        elif mine:
            summary = f"all {len(ips)} in {network}; none landed on this node ({mine})"
        else:
            summary = f"all {len(ips)} in {network}; none landed on this node (no subnet.env)"
        # the others by node, where the API server named it (a pod whose node is not known is not guessed at)
        others = Counter(p.node for p in self.placement.values() if not p.here and p.node)
        if others:
            summary += "; " + ", ".join(f"{n} on {node}" for node, n in sorted(others.items()))
        return Note("ok", summary, "\n".join(lines))

    def _this_node(self) -> smokecheck.ClusterNode | None:
        """The cluster's name for this node: the node whose InternalIP is one of this node's addresses."""
        if not self.nodes:
            return None
        mine = {cidr.split("/")[0] for _name, cidr in self.ctx.node.links.addresses()}
        return next((n for n in self.nodes if n.address in mine), None)

    def _kubeconfig(self) -> str | None:
        """The smoke test's kubeconfig as a path on this machine, for explain-service's kubectl calls."""
        return str(self.ctx.node.files.path(self.a.kubeconfig)) if self.a.kubeconfig else None

    # 6
    def rules(self, progress: Callable[[str], None]) -> Note:
        # kube-proxy syncs on its own schedule: give it a few seconds to catch up with the endpoints
        deadline = time.monotonic() + min(10.0, self.a.timeout_s)
        waited = False
        mode = None  # once a trace has found the service, its mode: no ConfigMap or other mode's listing again
        while True:
            note, found = smokecheck.rules_check(self.ctx.node, self.a.namespace, self.a.service, self._kubeconfig(),
                                                 self.service, mode)
            self.trace = found
            if found is not None and (found.branches or found.refusals):
                mode = found.mode
            if found is not None and found.complete:
                if set(found.endpoints) == set(self.endpoints):
                    return note
                note = Note("failed", f"kube-proxy's DNAT targets {', '.join(found.endpoints)} differ from the "
                            f"endpoints {', '.join(self.endpoints)}", "kube-proxy is behind or watches another cluster")
            if time.monotonic() > deadline:
                return note
            if not waited:
                progress("waiting for kube-proxy's rules")
                waited = True
            self.pause(0.5)

    # 7
    def traffic(self, progress: Callable[[str], None]) -> Note:
        address = _node_address(self.ctx)
        if address is None:
            return Note("failed", "cannot tell this node's address for the node-port test",
                        "set flanneld.iface to the node's interface")
        def explain(pod: smokecheck.PodPlace) -> list[Check]:
            # imported here: the mesh step is only needed when a pod on another node is silent
            from wizard.steps.mesh import explain_pod

            progress(f"{pod} never answered; checking the mesh to {pod.node_text()}")
            return explain_pod(self.ctx, pod.ip)

        note, _targets = smokecheck.traffic_check(self.ctx.node, self.trace, address, interrupted=self.ctx.interrupted,
                                                  pods=list(self.placement.values()), explain=explain)
        return note

    # 8
    def cleanup(self, progress: Callable[[str], None]) -> Note:
        a = self.a
        if not a.cleanup:
            return Note("skipped", f"kept deployment {a.deployment} and service {a.service} (cleanup: false); "
                        "`flannel-wizard undo` removes them")
        said = self.ctx.release()  # reverses the deploy change through the journal, as undo would
        bad = next((n for n in said if n.status != "ok"), None)
        if bad is not None:
            return Note("warn", f"could not delete the test objects: {bad.message}",
                        f"{bad.detail}; `flannel-wizard undo` tries again")
        return Note("ok", "; ".join(n.message for n in said) or "nothing to delete")


def _placement(addresses: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, smokecheck.PodPlace]:
    """Each endpoint address's pod: its name (targetRef), node (the address's nodeName, else the pod's
    spec.nodeName) and host IP (the pod's status.hostIP)."""
    by_name = {p.get("metadata", {}).get("name"): p for p in pods}
    by_ip = {p.get("status", {}).get("podIP"): p for p in pods}
    out = {}
    for addr in addresses:
        ip = addr.get("ip", "")
        ref = (addr.get("targetRef") or {}).get("name")
        pod = by_name.get(ref) or by_ip.get(ip) or {}
        name = ref or pod.get("metadata", {}).get("name")
        node = addr.get("nodeName") or pod.get("spec", {}).get("nodeName")
        out[ip] = smokecheck.PodPlace(ip, name, node, pod.get("status", {}).get("hostIP"))
    return out


def _where(place: smokecheck.PodPlace | None) -> str:
    if place is None:
        return "pod not known"
    text = f"pod {place.pod or '?'}"
    if place.node:
        text += f" on {place.node}"
    if place.host_ip:
        text += f" ({place.host_ip})"
    return text


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or [])


def _why_not_ready(pod: dict[str, Any]) -> str:
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status", {})
    phase = status.get("phase", "Unknown")
    for c in status.get("containerStatuses") or []:
        state = c.get("state", {})
        for kind in ("waiting", "terminated"):
            if state.get(kind):
                reason = state[kind].get("reason", kind)
                message = state[kind].get("message", "")
                restarts = c.get("restartCount", 0)
                extra = f" ({restarts} restarts)" if restarts else ""
                return f"{name}: {phase} — {reason}{extra}" + (f": {message}" if message else "")
    for c in status.get("conditions") or []:
        if c.get("status") == "False" and c.get("reason"):
            return f"{name}: {phase} — {c['reason']}" + (f": {c['message']}" if c.get("message") else "")
    return f"{name}: {phase}"


def _node_address(ctx: Context) -> str | None:
    links = ctx.node.links
    dev = ctx.answers.flanneld.iface
    if not dev:
        dev = next((r.dev for r in links.routes() if r.dst.prefixlen == 0 and r.dev), None)
    for name, cidr in links.addresses():
        if name == dev:
            return cidr.split("/")[0]
    return None


def verify(ctx: Context, facts: Facts) -> list[Check]:
    if not facts.enabled:
        return []
    run = Run(ctx, facts.nodes)
    titles = SUBSTEPS[2:-1]
    steps = (run.expose, run.ready, run.pod_network, run.rules, run.traffic)
    done = 0
    try:
        for title, fn in zip(titles, steps, strict=True):
            run.sub(title, fn)
            done += 1
    except Stop:
        for title in titles[done + 1:]:
            _emit_sub(ctx, title, "skipped", "skipped")
    finally:
        run.sub("cleanup", run.cleanup)
    failed = next(((t, n) for t, n in run.results if n.status == "failed"), None)
    if failed is not None:
        info = substep(failed[0])
        return [Note("failed", f"{info.index}/{info.total} {info.title}: {failed[1].message}", failed[1].detail)]
    if any(n.status == "warn" for _t, n in run.results):
        return [Note("warn", "smoke test passed with warnings (see the sub-steps)")]
    return [Note("ok", "smoke test passed: the service answered through kube-proxy")]


STEP = Step(NAME, "service smoke test", inspect, plan, verify, needs=("etcd", "flanneld"))
