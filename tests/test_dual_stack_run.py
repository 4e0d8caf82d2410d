"""A dual-stack run from answers to smoke test on the demo's simulated node: the lease key with '&',
subnet.env's IPv6 lines in flannel's order, and the lease read back by every step that reads leases."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests import lab
from tests.kubeproxy import Service, iptables_save
from tests.tui import FAST
from wizard import scenarios
from wizard.answers import load, parse
from wizard.events import StepEvent
from wizard.explain import explain
from wizard.journal import Journal
from wizard.node import Node
from wizard.node.simulated import SimulatedNode
from wizard.runner import Runner
from wizard.steps import ORDER, Context

OTHER = "/kube-centos/network/subnets/172.30.14.0-24&fc00:0:0:e::-64"
ANSWERS = """version: 1
etcd: {prefix: /kube-centos/network}
network:
  enable_ipv6: true
  ipv6_cidr: fc00::/48
flanneld: {subnet_file: /run/flannel/subnet.env}
"""


def test_a_dual_stack_node_from_answers_to_smoke_test(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["etcd"]["keys"] = {OTHER: '{"PublicIP":"192.168.56.10","PublicIPv6":"fd00::10","BackendType":"vxlan",'
                                      '"BackendData":{"VNI":1,"VtepMAC":"6e:4c:1a:0b:9d:21"}}'}
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    events: list[StepEvent] = []
    try:
        ctx = Context(parse(ANSWERS), node, emit=events.append)
        code = Runner(ctx, Journal(node.files, node_identity=node.identity()), list(ORDER)).run().code
        keys = [key for key, _ in node.store.list("/kube-centos/network/subnets/")]
        subnet_env = node.files.read_text("/run/flannel/subnet.env")
    finally:
        node.close()
    failed = [(e.step, e.message, e.detail) for e in events if e.status == "failed"]
    assert code == 0 and failed == []
    # this node's lease: both families, in MakeSubnetKey's form, next to the other node's
    assert sorted(keys) == sorted([OTHER, "/kube-centos/network/subnets/172.30.1.0-24&fc00:0:0:1::-64"])
    assert subnet_env == ("FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.1.1/24\n"
                          "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\n"
                          "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n")
    # a note's listing (the etcd step's leases) is its items, under the line that sums it up
    said = "\n".join(f"{e.message}\n{e.detail or ''}\n" + "\n".join(e.items) for e in events)
    # the flanneld check found the dual-stack key (it used to build an IPv4-only key and say "no lease")
    assert "lease 172.30.1.0/24 + fc00:0:0:1::/64 for 192.168.56.11 in etcd matches FLANNEL_SUBNET=172.30.1.1/24" in said
    # the etcd step lists both leases; the smoke test labels pods on the other node by its dual-stack lease
    assert "172.30.14.0/24 + fc00:0:0:e::/64 → 192.168.56.10" in said
    assert "node subnet 172.30.14.0/24 (192.168.56.10)" in said


def test_explain_service_labels_endpoints_from_dual_stack_leases(etcd: lab.Etcd, tmp_path: Path) -> None:
    """`explain-service --answers` against a real etcd holding dual-stack lease keys: each endpoint gets
    its node's lease (the '&' keys used to raise AddressValueError in the lease parser)."""
    prefix = f"/fwtest-{uuid.uuid4().hex[:8]}/network"
    etcd.ctl("put", f"{prefix}/subnets/172.30.38.0-24&fc00:0:0:26::-64",
             '{"PublicIP":"192.168.56.11","PublicIPv6":"fd00::11","BackendType":"vxlan"}')
    etcd.ctl("put", f"{prefix}/subnets/172.30.46.0-24&fc00:0:0:2e::-64",
             '{"PublicIP":"192.168.56.12","PublicIPv6":"fd00::12","BackendType":"vxlan"}')
    answers_file = tmp_path / "answers.yaml"
    answers_file.write_text(f"version: 1\netcd:\n  endpoints: ['{etcd.endpoint}']\n  prefix: {prefix}\n")
    web = Service("default", "example-service", "10.254.124.145", 8080, ["172.30.38.2:8080", "172.30.46.2:8080"],
                  node_port=30554)
    real = Node(str(tmp_path))
    try:
        found = explain(real, "default", "example-service", rules=iptables_save([web]), answers=load(str(answers_file)))
    finally:
        real.close()
    leases = {ip: label.lease for ip, label in found.labels.items()}
    assert leases == {"172.30.38.2": "node subnet 172.30.38.0/24 (192.168.56.11)",
                      "172.30.46.2": "node subnet 172.30.46.0/24 (192.168.56.12)"}
