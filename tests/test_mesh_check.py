"""`flannel-wizard check --only mesh` in the multi-node lab (tests/meshlab.py): real vxlan and host-gw between
node namespaces, each fault injected for real, and the check naming the node and the hop that breaks — and
nothing at all on a healthy mesh, ten times in a row."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import lab
from tests.meshlab import MeshLab, MeshNode, mesh_lab


@pytest.fixture(scope="module")
def vxlan() -> Iterator[MeshLab]:
    with mesh_lab() as made:
        yield made


@pytest.fixture
def mesh(vxlan: MeshLab) -> Iterator[MeshLab]:
    """The module's lab, healed after each test whatever the test did to it."""
    try:
        yield vxlan
    finally:
        vxlan.heal()
        vxlan.wait_converged()


def check(lab_: MeshLab, node: MeshNode) -> tuple[int, dict[str, Any], float]:
    t0 = time.monotonic()
    done = lab_.run_in(node, lab.wizard_argv("check", str(lab_.answers(node)), "--root", str(node.root), "--only",
                                             "mesh", "--output", "json"), timeout=60)
    took = time.monotonic() - t0
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    return done.returncode, next(s for s in result["steps"] if s["name"] == "mesh"), took


def failed(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in step["checks"] if c["status"] == "failed"]


def about(step: dict[str, Any], subject: str) -> dict[str, Any]:
    """The check about one peer: its failure when it has one, else its ok line."""
    mine = [c for c in step["checks"] if c["subject"] == subject]
    return next((c for c in mine if c["status"] == "failed"), mine[0])


def test_a_healthy_mesh_passes_ten_times_with_no_false_alarm(mesh: MeshLab) -> None:
    for _ in range(10):
        for node in mesh.nodes:
            code, step, took = check(mesh, node)
            assert code == 0, failed(step)
            peers = [c for c in step["checks"] if c["subject"]]
            assert len(peers) == len(mesh.nodes) - 1
            assert all(c["status"] == "ok" and c["hop"] == "" for c in peers)
            assert took < 5, took


def test_udp_8472_dropped_on_one_node_is_named_from_both_sides(mesh: MeshLab) -> None:
    one, two, three = mesh.nodes[:3]
    mesh.drop_udp(three)
    code, step, _ = check(mesh, one)
    assert code == 1
    assert about(step, three.public_ip)["hop"] == "port"
    assert "UDP 8472" in about(step, three.public_ip)["message"]
    assert about(step, two.public_ip)["status"] == "ok"  # the rest of the mesh is not blamed
    code, step, _ = check(mesh, three)
    local = next(c for c in failed(step) if not c["subject"] and c["hop"])
    assert local["hop"] == "port" and "--dport 8472 -j DROP" in local["message"]


def test_a_smaller_mtu_on_one_underlay_link_is_a_path_mtu_black_hole(mesh: MeshLab) -> None:
    one, two, three = mesh.nodes[:3]
    mesh.underlay_mtu(two, 1400)
    code, step, took = check(mesh, one)
    assert code == 1
    broken = about(step, two.public_ip)
    assert broken["hop"] == "path MTU" and "1450-byte packets" in broken["message"]
    # the veth and the bridge pass 4 bytes over the MTU: 1404 outer bytes, less vxlan's 50
    assert "largest that gets through is 1354 bytes" in broken["message"]
    assert "network.backend.mtu: 1404" in broken["detail"]
    assert about(step, three.public_ip)["status"] == "ok"
    assert took < 5, took


def test_forward_policy_drop_is_named_on_the_node_that_has_it(mesh: MeshLab) -> None:
    one = mesh.nodes[0]
    mesh.forward_drop(one)
    code, step, _ = check(mesh, one)
    assert code == 1
    [problem] = failed(step)
    assert problem["hop"] == "forward policy" and "the FORWARD policy DROP" in problem["message"]
    assert "to this node's pods" in problem["message"]
    assert "iptables -I FORWARD -s 172.30.0.0/16 -j ACCEPT" in problem["detail"]


def test_kube_proxy_s_mark_rule_does_not_hide_the_drop_policy_nor_an_early_accept_a_later_drop(mesh: MeshLab) -> None:
    # kube-proxy's KUBE-FORWARD accepts marked packets only: pod traffic from other nodes is not marked
    one, two = mesh.nodes[:2]
    rules = [["-N", "KUBE-FORWARD"], ["-A", "KUBE-FORWARD", "-m", "mark", "--mark", "0x4000/0x4000", "-j", "ACCEPT"],
             ["-A", "FORWARD", "-j", "KUBE-FORWARD"],
             ["-A", "INPUT", "-s", "192.168.64.0/24", "-p", "udp", "--dport", "8472", "-j", "ACCEPT"],
             ["-A", "INPUT", "-p", "udp", "--dport", "8472", "-j", "DROP"]]
    for rule in rules:
        one.ns.exec("iptables", "-w", "5", *rule)
    try:
        mesh.forward_drop(one)
        code, step, _ = check(mesh, one)
        assert code == 1
        assert [c["hop"] for c in failed(step) if not c["subject"] and c["hop"]] == ["forward policy"]
        assert about(step, two.public_ip)["status"] == "ok"  # the UDP accept before the drop holds
    finally:
        for chain in ("FORWARD", "INPUT", "KUBE-FORWARD"):
            one.ns.exec("iptables", "-w", "5", "-F", chain)
        one.ns.exec("iptables", "-w", "5", "-X", "KUBE-FORWARD")


def test_a_catch_all_reject_in_forward_is_named(mesh: MeshLab) -> None:
    # CentOS 7's iptables-services default: policy ACCEPT, then REJECT everything forwarded
    one = mesh.nodes[0]
    one.ns.exec("iptables", "-w", "5", "-A", "FORWARD", "-j", "REJECT", "--reject-with", "icmp-host-prohibited")
    try:
        code, step, _ = check(mesh, one)
        assert code == 1
        [problem] = failed(step)
        assert problem["hop"] == "forward policy" and "-A FORWARD -j REJECT" in problem["message"]
    finally:
        one.ns.exec("iptables", "-w", "5", "-F", "FORWARD")


def test_a_stale_neighbour_is_named_with_both_macs(mesh: MeshLab) -> None:
    one, two = mesh.nodes[:2]
    mesh.stale_neighbour(one, two, mac="02:00:00:00:de:ad")
    code, step, _ = check(mesh, one)
    assert code == 1
    broken = about(step, two.public_ip)
    assert broken["hop"] == "overlay state"
    assert "stale neighbour" in broken["message"] and "02:00:00:00:de:ad" in broken["message"]
    vtep = mesh.leases()[two.lease.replace("/", "-")]["BackendData"]["VtepMAC"]
    assert vtep in broken["message"] and f"ip neigh replace {two.overlay_ip} lladdr {vtep}" in broken["detail"]


def test_two_leases_with_one_public_ip_are_named(mesh: MeshLab) -> None:
    one, two = mesh.nodes[:2]
    assert mesh.etcd is not None
    key = f"{mesh.prefix}/subnets/172.30.200.0-24"
    value = json.dumps({"PublicIP": two.public_ip, "PublicIPv6": None, "BackendType": "vxlan",
                        "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:be:ef"}})
    mesh.etcd.ctl("put", key, value)
    try:
        code, step, _ = check(mesh, one)
        assert code == 1
        shared = next(c for c in failed(step) if c["hop"] == "shared PublicIP")
        assert shared["subject"] == two.public_ip and "2 leases share PublicIP" in shared["message"]
    finally:
        mesh.etcd.ctl("del", key)


def test_a_second_node_registering_with_a_taken_public_ip_is_named_everywhere() -> None:
    # flannel reuses the lease an address holds: the newcomer takes node1's lease and rewrites its VtepMAC
    with mesh_lab() as made:
        one, two = made.nodes[:2]
        newcomer = made.duplicate_public_ip(one)
        lab.wait_for(lambda: check(made, two)[0] == 1, 10, "node2 to see node1's lease change")
        _, step, _ = check(made, one)
        taken = about(step, one.public_ip)
        assert taken["hop"] == "shared PublicIP" and "took the lease over" in taken["message"]
        assert all(c["hop"] == "shared PublicIP" for c in failed(step) if c["subject"])
        _, step, _ = check(made, two)
        assert about(step, one.public_ip)["hop"] == "shared PublicIP"
        _, step, _ = check(made, newcomer)
        assert any(c["hop"] == "shared PublicIP" and "which no interface here has" in c["message"]
                   for c in failed(step))


def test_host_gw_names_the_node_off_the_segment_and_passes_the_others() -> None:
    with mesh_lab(backend="host-gw", off_segment=1) as made:
        one, two, off = made.nodes[:3]
        code, step, _ = check(made, one)
        assert code == 1
        assert about(step, two.public_ip)["status"] == "ok"
        broken = about(step, off.public_ip)
        assert broken["hop"] == "underlay" and "one L2 segment" in broken["message"]
        assert "via gateway" in broken["message"]


def test_a_healthy_host_gw_mesh_passes() -> None:
    with mesh_lab(backend="host-gw") as made:
        for node in made.nodes:
            code, step, _ = check(made, node)
            assert code == 0, failed(step)


def test_a_lease_with_a_garbage_public_ip_is_named_not_a_traceback(mesh: MeshLab) -> None:
    one = mesh.nodes[0]
    assert mesh.etcd is not None
    key = f"{mesh.prefix}/subnets/172.30.201.0-24"
    mesh.etcd.ctl("put", key, json.dumps({"PublicIP": "not-an-ip", "BackendType": "vxlan", "BackendData": {}}))
    try:
        code, step, _ = check(mesh, one)
        assert code == 1
        [broken] = [c for c in failed(step) if c["hop"] == "lease"]
        assert "not-an-ip" in broken["message"] and "etcdctl del" in broken["detail"]
    finally:
        mesh.etcd.ctl("del", key)


def test_a_stale_subnet_env_is_named_and_this_node_is_not_taken_for_a_peer(mesh: MeshLab) -> None:
    one = mesh.nodes[0]
    env = one.subnet_file.read_text()
    one.subnet_file.write_text(env.replace(one.lease.split(".0/")[0] + ".1/", "172.30.222.1/"))
    try:
        code, step, _ = check(mesh, one)
        assert code == 1
        missing = next(c for c in failed(step) if c["hop"] == "lease")
        assert "no lease in etcd for this node's FLANNEL_SUBNET=172.30.222.1/24" in missing["message"]
        assert one.public_ip not in {c["subject"] for c in failed(step)}
        assert "2 of 2 other node(s) reached" in json.dumps(step)
    finally:
        one.subnet_file.write_text(env)


def test_without_cap_net_raw_the_probes_are_one_finding_not_every_node_down(mesh: MeshLab) -> None:
    one = mesh.nodes[0]
    argv = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"] + lab.wizard_argv(
        "check", str(mesh.answers(one)), "--root", str(one.root), "--only", "mesh", "--output", "json")
    done = mesh.run_in(one, argv, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    step = next(s for s in json.loads(done.stdout.strip().splitlines()[-1])["result"]["steps"] if s["name"] == "mesh")
    [problem] = failed(step)
    assert "could not be sent" in problem["message"] and "CAP_NET_RAW" in problem["detail"]


def test_direct_routing_expects_a_direct_route_to_nodes_on_the_segment(mesh: MeshLab) -> None:
    one, two, three = mesh.nodes[:3]
    assert mesh.etcd is not None
    config_key = f"{mesh.prefix}/config"
    config = mesh.etcd.get(config_key)
    assert config is not None
    with_direct = json.loads(config)
    with_direct["Backend"]["DirectRouting"] = True
    mesh.etcd.ctl("put", config_key, json.dumps(with_direct))
    one.ns.ip("route", "replace", two.lease, "via", two.public_ip, "dev", "eth0")
    try:
        code, step, _ = check(mesh, one)
        assert about(step, two.public_ip)["status"] == "ok"
        assert "direct route via" in about(step, two.public_ip)["message"]
        # flannel would route to node3 directly too: the vxlan route it has is not what flannel programs
        broken = about(step, three.public_ip)
        assert broken["hop"] == "overlay state" and f"via {three.public_ip}" in broken["message"]
    finally:
        mesh.etcd.ctl("put", config_key, config)
        one.ns.ip("route", "replace", two.lease, "via", two.overlay_ip, "dev", "flannel.1", "onlink")
