"""smoke: the service smoke test of seed-procedure §4–5. nginx pods behind a NodePort service, and
proof that traffic to the cluster IP and to this node's port reaches them through kube-proxy.

Eight sub-steps, each with its own live status: cluster reachable, deploy, expose, endpoints
ready, pod network, kube-proxy rules, traffic, cleanup. It changes nothing it keeps: what it
creates is labelled as the wizard's, and deleted at the end unless `cleanup: false`.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wizard import flannel, smokecheck
from wizard.errors import WizardError
from wizard.events import StepEvent
from wizard.steps import Note, Plan

if TYPE_CHECKING:
    from wizard.answers import SmokeTest
    from wizard.node.commands import Result
    from wizard.steps import Check, Context

NAME = "smoke"
TITLE = "service smoke test"
CHANGES = False  # what it creates is temporary and removed again
MANAGED_BY = {"app.kubernetes.io/managed-by": "flannel-wizard"}
REQUEST_TIMEOUT_S = 10
SUBSTEPS = ("cluster reachable", "deploy", "expose", "endpoints ready", "pod network", "kube-proxy rules",
            "traffic", "cleanup")


class Stop(Exception):
    """A sub-step failed: the rest are skipped (cleanup still runs)."""


def inspect(ctx: Context) -> None:
    return None


def plan(ctx: Context, facts: None) -> Plan:
    result = Plan()
    a = ctx.answers.smoke_test
    if not a.enabled:
        result.note("skipped", "skipped: smoke_test.enabled is false")
        return result
    result.note("ok", f"after the other steps: {a.replicas} × {a.image} as deployment {a.deployment} and NodePort "
                f"service {a.service}:{a.service_port} in {a.namespace}, traffic through kube-proxy, "
                + ("then deleted" if a.cleanup else "kept afterwards (cleanup: false)"))
    return result


# ---------------------------------------------------------------- kubectl


def kubectl(ctx: Context, *args: str, input: str | None = None) -> Result:
    a = ctx.answers.smoke_test
    argv = ["kubectl", f"--request-timeout={REQUEST_TIMEOUT_S}s"]
    if a.kubeconfig:
        argv += ["--kubeconfig", str(ctx.node.files.path(a.kubeconfig))]
    return ctx.node.commands.run(*argv, *args, input=input, timeout=REQUEST_TIMEOUT_S + 5)


def _said(result: Result) -> str:
    text = (result.err or result.out).strip()
    return text.splitlines()[0] if text else f"kubectl exit {result.rc}"


def _json(result: Result) -> dict[str, Any]:
    docs = _docs(result)
    return docs[0] if docs else {}


def _docs(result: Result) -> list[dict[str, Any]]:
    """kubectl -o json prints one document, or one after another for several objects."""
    decoder, text, pos, out = json.JSONDecoder(), result.out, 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        try:
            data, pos = decoder.raw_decode(text, pos)
        except ValueError:
            raise WizardError(f"kubectl printed something that is not JSON: {text[pos:pos + 80]!r}") from None
        if isinstance(data, dict):
            out.append(data)


def _items(result: Result) -> list[dict[str, Any]]:
    out = []
    for data in _docs(result):
        out += list(data.get("items", [])) if data.get("kind", "").endswith("List") else [data]
    return out


def manifest(a: SmokeTest) -> dict[str, Any]:
    labels = dict(a.labels)
    owned = {**labels, **MANAGED_BY}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": a.deployment, "namespace": a.namespace, "labels": owned},
        "spec": {
            "replicas": a.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": owned},
                "spec": {"containers": [{"name": a.deployment, "image": a.image,
                                         "ports": [{"containerPort": a.container_port}]}]},
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
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.a = ctx.answers.smoke_test
        self.index = 0
        self.results: list[Note] = []
        self.created = False
        self.service: dict[str, Any] = {}
        self.endpoints: list[str] = []
        self.trace: Any = None

    def emit(self, status: Any, message: str, detail: str = "", elapsed: float = 0.0) -> None:
        self.ctx.emit(StepEvent(NAME, status, message, detail, elapsed, kind="substep"))

    def sub(self, fn: Callable[[Callable[[str], None]], Note]) -> Note:
        title = SUBSTEPS[self.index]
        self.index += 1
        label = f"{self.index}/{len(SUBSTEPS)} {title}"
        t0 = time.monotonic()
        self.emit("running", label)
        try:
            note = fn(lambda progress: self.emit("running", f"{label}: {progress}"))
        except WizardError as exc:
            note = Note("failed", exc.what, exc.fix)
        self.emit(note.status, f"{label}: {note.message}", note.detail, time.monotonic() - t0)
        self.results.append(note)
        if note.status == "failed" and title != "cleanup":
            raise Stop()
        return note

    # 1
    def cluster(self, progress: Callable[[str], None]) -> Note:
        result = kubectl(self.ctx, "version", "-o", "json")
        if result.rc == 127:
            return Note("failed", "kubectl not found", "install kubectl on this node, or set smoke_test.enabled: false")
        server = _json(result).get("serverVersion", {}) if result.out.strip() else {}
        if not server:
            return Note("failed", f"no Kubernetes API server answered: {_said(result)}",
                        "check smoke_test.kubeconfig (or ~/.kube/config) and that the API server runs")
        return Note("ok", f"API server {server.get('gitVersion', '?')}")

    # 2
    def deploy(self, progress: Callable[[str], None]) -> Note:
        a = self.a
        names = [f"deployment/{a.deployment}", f"service/{a.service}"]
        found = kubectl(self.ctx, "get", *names, "-n", a.namespace, "-o", "json", "--ignore-not-found")
        if not found.ok:
            return Note("failed", f"cannot look for existing objects: {_said(found)}", "check the kubeconfig's permissions")
        existing = _items(found)
        for item in existing:
            labels = item.get("metadata", {}).get("labels") or {}
            if labels.get("app.kubernetes.io/managed-by") != "flannel-wizard":
                kind = item.get("kind", "object").lower()
                return Note("failed", f"{kind} {item['metadata']['name']} already exists in {a.namespace} and was "
                            "not created by flannel-wizard; refusing to touch it",
                            "choose other names in smoke_test (deployment, service), or remove it yourself")
        replaced = ""
        if existing:
            progress("replacing the wizard's earlier objects")
            gone = kubectl(self.ctx, "delete", *names, "-n", a.namespace, "--ignore-not-found", "--wait=true",
                           "--timeout=30s")
            if not gone.ok:
                return Note("failed", f"cannot delete the wizard's earlier objects: {_said(gone)}")
            replaced = " (replaced the wizard's earlier one)"
        created = kubectl(self.ctx, "create", "-f", "-", "-o", "json", "--validate=false",
                          input=json.dumps(manifest(a)))
        if not created.ok:
            return Note("failed", f"kubectl create failed: {_said(created)}",
                        "the kubeconfig's user must be allowed to create deployments and services in " + a.namespace)
        self.created = True
        for item in _items(created):
            if item.get("kind") == "Service":
                self.service = item
        return Note("ok", f"deployment {a.deployment}: {a.replicas} × {a.image}{replaced}")

    # 3
    def expose(self, progress: Callable[[str], None]) -> Note:
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
            got = kubectl(self.ctx, "get", "pods,endpoints", "-l", _selector(a), "-n", a.namespace, "-o", "json")
            if not got.ok:
                return Note("failed", f"cannot read pods and endpoints: {_said(got)}")
            items = _items(got)
            pods = [i for i in items if i.get("kind") == "Pod"]
            ready = []
            for item in items:
                if item.get("kind") == "Endpoints" and item.get("metadata", {}).get("name") == a.service:
                    for subset in item.get("subsets") or []:
                        ports = subset.get("ports") or [{}]
                        ready += [f"{addr['ip']}:{ports[0].get('port', a.container_port)}"
                                  for addr in subset.get("addresses") or []]
            self.endpoints = sorted(ready)
            if len(ready) >= a.replicas:
                return Note("ok", f"{len(ready)}/{a.replicas} ready: {', '.join(self.endpoints)}")
            if len(ready) != shown:  # a line when the count moves, not one per poll
                shown = len(ready)
                progress(f"{shown}/{a.replicas} ready")
            if time.monotonic() > deadline:
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return Note("failed", f"{len(self.endpoints)}/{a.replicas} ready after {a.timeout_s:g}s",
                    "\n".join(_why_not_ready(p) for p in pods if not _pod_ready(p)) or "no pods were created")

    # 5
    def pod_network(self, progress: Callable[[str], None]) -> Note:
        cfg = self.ctx.shared.get("kept_config") or self.ctx.answers.network.flannel_config(secrets=False)
        network = ipaddress.IPv4Network(cfg["Network"])
        ips = [ipaddress.IPv4Address(e.rsplit(":", 1)[0]) for e in self.endpoints]
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
        for ip in ips:
            lines.append(f"{ip}: {flannel.lease_holding(str(ip), leases) or 'no lease holds it'}")
        text = self.ctx.node.files.read_text(self.ctx.answers.flanneld.subnet_file)
        mine = flannel.parse_env(text).get("FLANNEL_SUBNET", "") if text else ""
        here = [str(ip) for ip in ips if mine and ip in ipaddress.IPv4Interface(mine).network]
        if here:
            summary = f"all {len(ips)} in {network}; {len(here)} on this node's FLANNEL_SUBNET {mine}"
        else:
            summary = f"all {len(ips)} in {network}; none landed on this node ({mine or 'no subnet.env'})"
        return Note("ok", summary, "\n".join(lines))

    # 6
    def rules(self, progress: Callable[[str], None]) -> Note:
        # kube-proxy syncs on its own schedule: give it a few seconds to catch up with the endpoints
        deadline = time.monotonic() + min(10.0, self.a.timeout_s)
        waited = False
        while True:
            note, found = smokecheck.rules_check(self.ctx.node, self.a.namespace, self.a.service)
            self.trace = found
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
            time.sleep(0.5)

    # 7
    def traffic(self, progress: Callable[[str], None]) -> Note:
        address = _node_address(self.ctx)
        if address is None:
            return Note("failed", "cannot tell this node's address for the node-port test",
                        "set flanneld.iface to the node's interface")
        note, _targets = smokecheck.traffic_check(self.ctx.node, self.trace, address)
        return note

    # 8
    def cleanup(self, progress: Callable[[str], None]) -> Note:
        a = self.a
        if not self.created:
            return Note("ok", "nothing was created")
        if not a.cleanup:
            return Note("skipped", f"kept deployment {a.deployment} and service {a.service} (cleanup: false)")
        gone = kubectl(self.ctx, "delete", f"deployment/{a.deployment}", f"service/{a.service}", "-n", a.namespace,
                       "--ignore-not-found", "--wait=false")
        if not gone.ok:
            return Note("warn", f"could not delete the test objects: {_said(gone)}",
                        f"kubectl delete deployment/{a.deployment} service/{a.service} -n {a.namespace}")
        return Note("ok", f"deleted deployment {a.deployment} and service {a.service}")


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


def verify(ctx: Context) -> list[Check]:
    if not ctx.answers.smoke_test.enabled:
        return []
    run = Run(ctx)
    try:
        for fn in (run.cluster, run.deploy, run.expose, run.ready, run.pod_network, run.rules, run.traffic):
            run.sub(fn)
    except Stop:
        for title in SUBSTEPS[run.index:-1]:
            run.emit("skipped", f"{SUBSTEPS.index(title) + 1}/{len(SUBSTEPS)} {title}: skipped")
        run.index = len(SUBSTEPS) - 1
    finally:
        run.sub(run.cleanup)
    failed = next((n for n in run.results if n.status == "failed"), None)
    if failed is not None:
        return [Note("failed", f"smoke test: {failed.message}", failed.detail)]
    if any(n.status == "warn" for n in run.results):
        return [Note("warn", "smoke test passed with warnings (see the sub-steps)")]
    return [Note("ok", "smoke test passed: the service answered through kube-proxy")]
