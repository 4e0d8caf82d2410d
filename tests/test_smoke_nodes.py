"""The smoke test across nodes, with real parts: two node namespaces on an underlay bridge, host-gw
routes between their pod subnets, pods that are real HTTP servers naming themselves, the real
`kubectl` against the API stand-in (nodes, placement by the Deployment's anti-affinity, and kube-proxy's
rules in node A), a real etcd in node A holding both host-gw leases, and the wizard run in node A.

The stand-in puts every pod on the first node unless the Deployment asks for anti-affinity, and node A
has two pod IPs to give: a test where the traffic reaches node B's pod proves the manifest asked.

Also: the same over real vxlan on main's mesh lab (tests/meshlab.py), the plan's choice of
anti-affinity (pure), the demo's cluster with a scenario's nodes, and the traffic check's verdicts on
scripted answers (which pod answers which request, made exact)."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import kubeproxy_nft as nft
from tests import nodepair
from tests.kubeproxy import Service, iptables_save
from tests.meshlab import mesh_lab
from tests.nodepair import Api, Pair, Wizard, substeps
from tests.tui import FAST
from wizard import iptables, nftables, scenarios
from wizard.answers import parse
from wizard.errors import WizardError
from wizard.events import StepEvent
from wizard.journal import Journal
from wizard.node.commands import Result
from wizard.node.simulated import SimulatedNode
from wizard.runner import Runner
from wizard.smokecheck import PodPlace, parse_nodes, traffic_check
from wizard.steps import ORDER, Context, Note, smoke


@pytest.fixture
def pair() -> Iterator[Pair]:
    with nodepair.make_pair() as made:
        yield made


@pytest.fixture
def wizard(pair: Pair, tmp_path: Path) -> Wizard:
    return Wizard.on_pair(pair, tmp_path)


@pytest.fixture
def api_two(pair: Pair) -> Iterator[Api]:
    """Both nodes; node A offers two pod IPs, so pods placed without anti-affinity both stay on it."""
    a, b = pair.a, pair.b
    api = Api.on_pair(pair, [a, b], [(a, a.spec.pods[0]), (a, a.spec.pods[1]), (b, b.spec.pods[0])])
    yield api
    api.close()


def deployment(events: list[dict]) -> dict[str, Any]:
    """The Deployment the plan would create, from the change's diff (the manifest kubectl is given)."""
    change = next(e["change"] for e in events if e.get("kind") == "change" or e.get("change"))
    items = json.loads(change["diff"])["items"]
    return next(i for i in items if i["kind"] == "Deployment")


def rtt_free(text: str) -> str:
    return re.sub(r"\d+(\.\d+)? ms\b", "N ms", text)


def node_json(name: str, ip: str, ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": name}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": ip}]}}


# ---------------------------------------------------------------- the plan (pure)


def test_the_plan_spreads_the_pods_only_over_schedulable_nodes() -> None:
    nodes = parse_nodes([
        node_json("node-a", "192.168.64.11"),
        node_json("node-b", "192.168.64.12"),
        node_json("node-c", "192.168.64.13", ready=False),
        node_json("node-d", "192.168.64.14", unschedulable=True),
        node_json("master", "192.168.64.10", taints=[{"key": "node-role.kubernetes.io/control-plane",
                                                     "effect": "NoSchedule"}]),
    ])
    assert [(n.name, n.why_not) for n in nodes] == [
        ("node-a", ""), ("node-b", ""), ("node-c", "NotReady"), ("node-d", "cordoned"),
        ("master", "tainted node-role.kubernetes.io/control-plane:NoSchedule")]

    def planned(text: str, nodes_: list) -> tuple[dict[str, Any], str]:
        answers = parse("version: 1\n" + text)
        facts = smoke.Facts(True, Note("ok", "API server v1.28.4"), [], nodes_)
        result = smoke.plan(answers, facts)
        dep = next(i for i in result.changes[0].objects if i["kind"] == "Deployment")
        return dep["spec"]["template"]["spec"], result.notes[-1].message

    term = {"labelSelector": {"matchLabels": {"run": "load-balancer-example"}},
            "topologyKey": "kubernetes.io/hostname"}
    spec, note = planned("", nodes)  # 2 replicas, 2 schedulable nodes: one each, or Pending
    assert spec["affinity"] == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    assert "one pod per node over node-a, node-b (required pod anti-affinity on kubernetes.io/hostname)" in note
    spec, note = planned("smoke_test: {replicas: 3}\n", nodes)  # a third pod must share a node
    assert spec["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}
    assert "spread over node-a, node-b (preferred pod anti-affinity: 3 pods, 2 nodes)" in note
    for text, nodes_ in (("", nodes[:1]), ("", []), ("smoke_test: {replicas: 1}\n", nodes)):
        spec, note = planned(text, nodes_)
        assert "affinity" not in spec and "node" not in note, (text, nodes_)


# ---------------------------------------------------------------- two nodes for real


def test_two_nodes_the_traffic_names_both_pods_and_both_nodes(wizard: Wizard, api_two: Api) -> None:
    code, events = wizard.run("plan")
    assert code == 0
    spec = deployment(events)["spec"]["template"]["spec"]
    assert spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "topologyKey"] == "kubernetes.io/hostname"

    started = time.monotonic()
    code, events = wizard.run()
    took = time.monotonic() - started
    subs = substeps(events)
    assert code == 0, json.dumps(subs, indent=1)[-3000:]
    assert subs["cluster reachable"]["message"] == ("1/8 cluster reachable: API server v1.28.4; "
                                                    "2 schedulable nodes: node-a, node-b")
    ready = subs["endpoints ready"]
    assert ready["message"].endswith("2/2 ready: 172.30.11.2:8080, 172.30.12.2:8080")
    assert ready["detail"] == ("172.30.11.2:8080: pod nginx-7c5ddbdf54-00000 on node-a (192.168.64.11)\n"
                               "172.30.12.2:8080: pod nginx-7c5ddbdf54-00001 on node-b (192.168.64.12)")
    network = subs["pod network"]
    assert network["message"] == ("5/8 pod network: all 2 in 172.30.0.0/16; 1 on this node's FLANNEL_SUBNET "
                                  "172.30.11.1/24; 1 on node-b")
    assert ("172.30.12.2: node subnet 172.30.12.0/24 (192.168.64.12); pod nginx-7c5ddbdf54-00001 on node-b "
            "(192.168.64.12)") in network["detail"]
    traffic = subs["traffic"]
    assert traffic["status"] == "ok", traffic
    assert traffic["message"] == "7/8 traffic: 12 of 12 requests answered by 2 endpoint(s) on 2 nodes (node-a, node-b)"
    lines = traffic["detail"].splitlines()
    for label in ("cluster IP 10.254.124.145:8080: 6/6 answered → ", "node port 192.168.64.11:30554: 6/6 answered → "):
        line = next(x for x in lines if x.startswith(label))
        # every answer is accounted to a named pod on a named node (random 50/50: 1 in 2**11 that one never does)
        served = dict(part.rsplit(" ×", 1) for part in line.removeprefix(label).split(", "))
        assert set(served) <= {"pod 172.30.11.2 on node-a", "pod 172.30.12.2 on node-b"}
        assert sum(int(n) for n in served.values()) == 6
    assert "pod 172.30.11.2:8080 (nginx-7c5ddbdf54-00000) on node-a, directly: answered (1 try)" in lines
    assert "pod 172.30.12.2:8080 (nginx-7c5ddbdf54-00001) on node-b, directly: answered (1 try)" in lines
    assert subs["cleanup"]["status"] == "ok"
    print(f"two-node smoke test: {took:.2f}s for the whole process")


def test_one_node_keeps_the_manifest_and_the_pods_together(pair: Pair, wizard: Wizard) -> None:
    a = pair.a
    api = Api.on_pair(pair, [a], [(a, a.spec.pods[0]), (a, a.spec.pods[1])])
    try:
        code, events = wizard.run("plan")
        assert code == 0
        assert "affinity" not in deployment(events)["spec"]["template"]["spec"]
        code, events = wizard.run()
    finally:
        api.close()
    subs = substeps(events)
    assert code == 0, json.dumps(subs, indent=1)[-3000:]
    assert subs["cluster reachable"]["message"] == "1/8 cluster reachable: API server v1.28.4"  # as before nodes
    assert subs["pod network"]["message"] == ("5/8 pod network: all 2 in 172.30.0.0/16; 2 on this node's "
                                              "FLANNEL_SUBNET 172.30.11.1/24")
    assert subs["traffic"]["message"] == "7/8 traffic: 12 of 12 requests answered by 2 endpoint(s)"


@pytest.mark.parametrize("rules, hop", [
    # node B drops everything for its pod subnet: the mesh analysis finds the first hop that fails
    ([["-I", "INPUT", "-d", "172.30.12.0/24", "-j", "DROP"], ["-I", "FORWARD", "-d", "172.30.12.0/24", "-j", "DROP"]],
     "overlay traffic"),
    # node B's FORWARD policy DROP (docker >= 1.13): its bridge answers, the pod behind it never does
    ([["-P", "FORWARD", "DROP"]], None),
], ids=["subnet-dropped", "forward-policy-drop"])
def test_a_pod_on_node_b_that_never_answers_goes_to_the_mesh_analysis(
        pair: Pair, wizard: Wizard, api_two: Api, rules: list[list[str]], hop: str | None) -> None:
    for rule in rules:
        pair.b.ns.exec("iptables", *rule)
    assert not nodepair.answers(pair.a, "172.30.12.2")
    code, events = wizard.run()
    subs = substeps(events)
    assert code == 1
    traffic = subs["traffic"]
    assert traffic["status"] == "failed", traffic
    checks = nodepair.explain_pod(wizard, "172.30.12.2")  # the same analysis, asked on its own
    assert checks
    head = "7/8 traffic: pod 172.30.12.2 (nginx-7c5ddbdf54-00001) on node-b never answered"
    failing = next((c for c in checks if c["status"] == "failed"), None)
    if hop is not None:
        assert failing is not None and failing["hop"] == hop and failing["subject"] == "192.168.64.12", checks
        assert traffic["message"] == f"{head}: {failing['message']}"
    else:
        assert failing is None, checks
        assert traffic["message"] == (f"{head}; the mesh to node-b passes up to its bridge: check node-b's FORWARD "
                                      "chain (docker ≥ 1.13 sets policy DROP) and the pod itself")
    detail = traffic["detail"]
    assert detail.startswith("mesh analysis for node-b:\n")
    for check in checks:  # every check the analysis gave, with its peer and hop (round trips vary run to run)
        where = " · ".join(x for x in (check["subject"], check["hop"]) if x)
        line = f"{check['status']}: " + (f"[{where}] " if where else "") + check["message"]
        assert rtt_free(line) in rtt_free(detail)
    lines = detail.splitlines()
    assert "pod 172.30.11.2:8080 (nginx-7c5ddbdf54-00000) on node-a, directly: answered (1 try)" in lines
    assert "pod 172.30.12.2:8080 (nginx-7c5ddbdf54-00001) on node-b, directly: no answer in 2 tries; timed out ×2" in lines
    assert "never answered: 172.30.12.2:8080" in lines
    # node A's pod still served through kube-proxy, and the run cleaned up after itself
    assert "pod 172.30.11.2 on node-a ×" in detail
    assert subs["cleanup"]["status"] == "ok"
    step = [e for e in events if e.get("kind") == "step" and e.get("step") == "smoke" and e["status"] == "failed"]
    assert step and step[-1]["message"] == traffic["message"]


# ---------------------------------------------------------------- the demo's cluster


def demo_run(tmp_path: Path, profile: dict[str, Any]) -> tuple[int, dict[str, StepEvent], list[StepEvent]]:
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    events: list[StepEvent] = []
    ctx = Context(parse("version: 1\n"), node, emit=events.append)
    # every step but the mesh step: the smoke test's own traffic is what these tests look at
    names = [n for n in ORDER if n != "mesh"]
    code = Runner(ctx, Journal(node.files, node_identity=node.identity()), names).run().code
    subs = {e.substep.title: e for e in events if e.step == "smoke" and e.kind == "substep" and e.substep is not None
            and e.status != "running"}
    return code, subs, events


TWO_NODES = {"nodes": [{"name": "node-a", "address": "192.168.56.11"}, {"name": "node-b", "address": "192.168.56.10"}]}


def test_the_demo_cluster_spreads_its_pods_over_the_scenarios_nodes(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["cluster"] = TWO_NODES
    code, subs, events = demo_run(tmp_path, profile)
    assert code == 0, [(e.status, e.message) for e in events if e.status == "failed"]
    assert subs["cluster reachable"].message.endswith("2 schedulable nodes: node-a, node-b")
    assert any("one pod per node over node-a, node-b" in e.message for e in events if e.kind == "note")
    # node-b's pod takes its IP from the lease node-b (192.168.56.10) holds
    assert subs["pod network"].message.endswith("1 on this node's FLANNEL_SUBNET 172.30.1.1/24; 1 on node-b")
    assert subs["traffic"].message == "7/8 traffic: 12 of 12 requests answered by 2 endpoint(s) on 2 nodes (node-a, node-b)"
    assert "pod 172.30.14.2:80 (nginx-5d9c8f7b6-bx1) on node-b, directly: answered (1 try)" in subs["traffic"].detail


def test_the_demo_hands_a_pod_behind_a_broken_overlay_to_the_mesh_analysis(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["cluster"] = TWO_NODES
    # the peer holding node-b's lease drops vxlan's port (the mesh-broken scenario's fault)
    profile["mesh"] = {"peers": [{"public_ip": "192.168.56.10", "subnet": "172.30.14.0/24",
                                  "vtep_mac": "6e:4c:1a:0b:9d:21", "udp_blocked": [8472]}]}
    code, subs, _events = demo_run(tmp_path, profile)
    assert code == 1
    traffic = subs["traffic"]
    assert traffic.status == "failed"
    assert traffic.message.startswith("7/8 traffic: pod 172.30.14.2 (nginx-5d9c8f7b6-bx1) on node-b never answered")
    assert traffic.detail.startswith("mesh analysis for node-b:\n")
    assert "pod 172.30.1.2:80 (nginx-5d9c8f7b6-ax0) on node-a, directly: answered (1 try)" in traffic.detail


# ---------------------------------------------------------------- the traffic check's verdicts


class ScriptedNode:
    """Only what traffic_check uses of a node: HTTP, answered by a function of the URL (who answers is
    the point here, not how the packet gets there: the lab tests above send real packets)."""

    def __init__(self, answer: Callable[[str, int], tuple[bool, str]]) -> None:
        self.turn = itertools.count()
        self.answer = answer
        self.http = self
        self.commands = self

    def get(self, url: str, timeout: float) -> tuple[bool, str]:
        return self.answer(url.split("//", 1)[1].split("/", 1)[0], next(self.turn))

    def run(self, *argv: str, **kw: Any) -> Result:
        # only `iptables-save -c`, for the KUBE-SEP counters: not needed, every answer here names its pod
        assert argv[0] == "iptables-save", argv
        return Result(argv, 127, "", "iptables-save: not on this scripted node")


A_POD, B_POD = "172.30.11.2", "172.30.12.2"
PLACES = [PodPlace(A_POD, "nginx-0", "node-a", "192.168.64.11", here=True),
          PodPlace(B_POD, "nginx-1", "node-b", "192.168.64.12")]


def verdict(answer: Callable[[str, int], tuple[bool, str]],
            explain: Callable[[PodPlace], list[Note]] | None = None) -> Note:
    service = Service("default", "example-service", "10.254.124.145", 8080, [f"{A_POD}:8080", f"{B_POD}:8080"],
                      node_port=30554)
    found = iptables.trace(iptables.parse(iptables_save([service])), "default", "example-service")
    node = ScriptedNode(answer)
    note, _targets = traffic_check(node, found, "192.168.64.11", tries=4, pods=PLACES, explain=explain)  # type: ignore[arg-type]
    return note


def test_the_traffic_verdicts() -> None:
    def alternate(host: str, n: int) -> tuple[bool, str]:  # kube-proxy's choice, made regular
        ip = host.rsplit(":", 1)[0]
        if ip in (A_POD, B_POD):
            return True, f"served by pod {ip}"
        return True, f"served by pod {(A_POD, B_POD)[n % 2]}"

    assert verdict(alternate).message == "8 of 8 requests answered by 2 endpoint(s) on 2 nodes (node-a, node-b)"

    # kube-proxy never picked node B's pod in these tries, but it answered at its own IP: proven, and said
    def only_a(host: str, n: int) -> tuple[bool, str]:
        ip = host.rsplit(":", 1)[0]
        return True, f"served by pod {ip if ip in (A_POD, B_POD) else A_POD}"

    note = verdict(only_a)
    assert (note.status, note.message) == ("ok", f"8 of 8 requests answered by 1 endpoint(s); {B_POD}:8080 only directly")

    # a pod on this node that answers neither way: a failure naming it (before pods were asked, a warning)
    def a_dead(host: str, n: int) -> tuple[bool, str]:
        ip = host.rsplit(":", 1)[0]
        if ip == A_POD or (ip not in (A_POD, B_POD) and n % 2 == 0):
            return False, "[Errno 111] Connection refused"
        return True, f"served by pod {B_POD}"

    note = verdict(a_dead)
    assert (note.status, note.message) == ("failed", f"pod {A_POD} on node-a never answered ([Errno 111] Connection refused)")

    # node B's pod silent, this node's answering: the mesh analysis for node-b, once, however many tries
    def b_silent(host: str, n: int) -> tuple[bool, str]:
        ip = host.rsplit(":", 1)[0]
        if ip == B_POD or (ip not in (A_POD, B_POD) and n % 2 == 1):
            return False, "timed out"
        return True, f"served by pod {A_POD}"

    asked: list[str] = []

    def explain(pod: PodPlace) -> list[Note]:
        asked.append(pod.ip)
        return [Note("ok", "lease", subject="192.168.64.12", hop="lease"),
                Note("failed", "UDP 8472 dropped", "open it", subject="192.168.64.12", hop="port"),
                Note("failed", "a later hop", subject="192.168.64.12", hop="bridge")]

    note = verdict(b_silent, explain)
    assert asked == [B_POD]
    assert note.message == f"pod {B_POD} (nginx-1) on node-b never answered: UDP 8472 dropped"
    assert note.detail.startswith("mesh analysis for node-b:\n  ok: [192.168.64.12 · lease] lease\n"
                                  "  failed: [192.168.64.12 · port] UDP 8472 dropped\n    open it\n")
    # no other node's lease holds the IP: the analysis has nothing, and that is said
    assert verdict(b_silent, lambda pod: []).message.endswith("never answered; no other node's lease holds its IP")

    def broken(pod: PodPlace) -> list[Note]:
        raise WizardError("cannot read the leases: etcd refused")

    assert verdict(b_silent, broken).message.endswith(
        "never answered (the mesh analysis could not run: cannot read the leases: etcd refused)")


# ---------------------------------------------------------------- vxlan, on the mesh lab


def test_over_real_vxlan_a_blocked_port_is_named_by_the_smoke_test(tmp_path: Path) -> None:
    """The same across main's mesh lab: flannel's vxlan state programmed by its flanneld stand-in in
    each node, etcd on the underlay. The pods answer across flannel.1; with node2's firewall dropping
    UDP 8472 the smoke test's traffic fails on node2's pod and names the port hop."""
    with mesh_lab(nodes=2) as mesh:
        n1, n2 = mesh.nodes
        base = mesh.answers(n1).read_text().split("smoke_test:")[0]  # etcd, network and flanneld as the lab has them
        wizard = Wizard(n1.ns, tmp_path, n1.root, base)
        api = Api(n1.ns, {n.name: n.address for n in mesh.nodes}, [(n1.name, n1.pods[0]), (n2.name, n2.pods[0])])
        try:
            code, events = wizard.run()
            subs = substeps(events)
            assert code == 0, json.dumps(subs, indent=1)[-3000:]
            assert subs["traffic"]["message"].endswith("on 2 nodes (node1, node2)")
            assert f"pod {n2.pods[0]} on node2 ×" in subs["traffic"]["detail"]

            mesh.drop_udp(n2)
            code, events = wizard.run()
            traffic = substeps(events)["traffic"]
            assert code == 1 and traffic["status"] == "failed", traffic
            checks = nodepair.explain_pod(wizard, n2.pods[0])
            failing = next(c for c in checks if c["status"] == "failed")
            assert (failing["subject"], failing["hop"]) == (n2.public_ip, "port"), checks
            assert traffic["message"] == (f"7/8 traffic: pod {n2.pods[0]} (nginx-7c5ddbdf54-00001) on node2 never "
                                          f"answered: {failing['message']}")
            assert rtt_free(f"failed: [{n2.public_ip} · port] {failing['message']}") in rtt_free(traffic["detail"])
        finally:
            api.close()


def test_answers_that_name_no_pod_in_nftables_mode_are_not_called_skipped() -> None:
    """nginx's own page names no pod, and nftables mode keeps no count per endpoint: who served is not
    known, so no endpoint is said to be skipped or silent (the review found '0 endpoint(s); … only
    directly')."""
    rules = nft.listing([nft.Service("default", "example-service", "10.254.124.145", 8080,
                                     [f"{A_POD}:8080", f"{B_POD}:8080"], port_name="", node_port=30554)])
    found = nftables.trace(nftables.parse(rules), "default", "example-service")

    def nginx(host: str, n: int) -> tuple[bool, str]:
        return True, "<h1>Welcome to nginx!</h1>"

    note, _ = traffic_check(ScriptedNode(nginx), found, "192.168.64.11", tries=4, pods=PLACES)  # type: ignore[arg-type]
    assert (note.status, note.message) == ("ok", "8 of 8 requests answered (the answers do not name their pod)")
    assert "8 answer(s) named no pod, and kube-proxy's nftables mode keeps no count per endpoint" in note.detail
    assert "only directly" not in note.message and "never answered" not in note.detail


def test_an_ipv6_pod_is_named_as_a_whole_address() -> None:
    from wizard.smokecheck import _names

    assert _names("served by pod fd00:10::8", "fd00:10::8")
    assert not _names("served by pod fd00:10::8a", "fd00:10::8")
    assert not _names("served by pod fd00:10::8:1", "fd00:10::8")
    assert not _names("served by pod 172.30.1.25", "172.30.1.2")
