"""The mesh lab is real: traffic between pods crosses real vxlan over a real underlay, the kernel holds
what flannel's backends program (facts.md), and each fault breaks what it should and nothing else."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.meshlab import UNDERLAY_GW, MeshLab, MeshNode, mesh_lab

QUICK = 1.0  # seconds a curl waits when the test expects silence somewhere
SETUPS = int(os.environ.get("FW_MESHLAB_SETUPS", "3"))  # FW_MESHLAB_SETUPS=10 for the long run


def served(node: MeshNode) -> str:
    return f"served by pod {node.pods[0]} on {node.name}\n"


def reach(mesh: MeshLab, src: MeshNode, timeout: float = 3.0) -> dict[str, bool]:
    """Which other nodes' pods answer HTTP from `src`, each checked for naming the right pod."""
    others = [n for n in mesh.nodes if n is not src]
    got = mesh.curl_all(src, [n.pods[0] for n in others], timeout=timeout)
    for n in others:
        assert got[n.pods[0]] in (None, served(n)), got
    return {n.name: got[n.pods[0]] is not None for n in others}


def assert_healthy(mesh: MeshLab) -> None:
    for node in mesh.nodes:
        assert reach(mesh, node) == {n.name: True for n in mesh.nodes if n is not node}
        assert mesh.programmed(node) == mesh.expected(node), node.name


@pytest.fixture(scope="module")
def vx() -> Iterator[MeshLab]:
    """One 3-node vxlan lab for the fault tests: each heals what it broke and checks the mesh is whole."""
    with mesh_lab() as made:
        yield made


def test_ten_rounds_of_the_healthy_mesh(vx: MeshLab) -> None:
    for _ in range(10):
        assert_healthy(vx)


def test_setups_in_a_row_each_healthy() -> None:
    """Fresh labs one after the other (three here, to keep the file quick; ten pass too)."""
    seen: list[str] = []
    for _ in range(SETUPS):
        with mesh_lab() as mesh:
            seen.append(mesh.id)
            assert sorted(n.lease for n in mesh.nodes) == ["172.30.1.0/24", "172.30.2.0/24", "172.30.3.0/24"]
            assert_healthy(mesh)
    assert len(set(seen)) == SETUPS
    assert not [ns for ns in lab.run("ip", "netns", "list").stdout.split() if any(i in ns for i in seen)]


def test_vxlan_state_is_what_flannel_programs(vx: MeshLab) -> None:
    leases = vx.leases()
    assert sorted(leases) == ["172.30.1.0-24", "172.30.2.0-24", "172.30.3.0-24"]
    for node in vx.nodes:
        dev = vx.vxlan(node)
        mac = dev["address"]
        assert leases[node.lease.replace("/", "-")] == {
            "PublicIP": node.public_ip, "PublicIPv6": None, "BackendType": "vxlan",
            "BackendData": {"VNI": 1, "VtepMAC": mac}}
        shown = node.ns.ip("-d", "link", "show", "flannel.1")
        assert re.search(rf"vxlan id 1 local {node.public_ip} dev eth0 .*dstport 8472 nolearning", shown), shown
        assert "mtu 1450 " in shown and ",UP," in shown
        assert [f"{a['local']}/{a['prefixlen']}" for a in dev["addr_info"] if a["family"] == "inet"] == \
            [f"{node.overlay_ip}/32"]
        assert node.subnet_file.read_text() == (
            f"FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET={ipaddress.IPv4Network(node.lease).network_address + 1}/24\n"
            "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n")
        routes = node.ns.ip("route", "show").splitlines()
        neigh = node.ns.ip("neigh", "show", "dev", "flannel.1").splitlines()
        fdb = lab.run("bridge", "-n", node.ns.name, "fdb", "show", "dev", "flannel.1").stdout.splitlines()
        for peer in vx.nodes:
            if peer is node:
                continue
            peer_mac = vx.vxlan(peer)["address"]
            assert f"{peer.lease} via {peer.overlay_ip} dev flannel.1 onlink " in routes
            assert f"{peer.overlay_ip} lladdr {peer_mac} PERMANENT " in neigh
            assert f"{peer_mac} dst {peer.public_ip} self permanent" in fdb
        assert len([r for r in routes if "flannel.1" in r]) == len(neigh) == len(fdb) == 2
        docker0 = json.loads(node.ns.ip("-j", "addr", "show", "docker0"))[0]
        assert docker0["mtu"] == 1450
        assert [f"{a['local']}/{a['prefixlen']}" for a in docker0["addr_info"] if a["family"] == "inet"] == \
            [node.subnet_env()["FLANNEL_SUBNET"]]
        eth0 = json.loads(node.ns.ip("-j", "link", "show", "eth0"))[0]
        assert eth0["mtu"] == 1500
        assert lab.run("ip", "netns", "exec", node.ns.name, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert_healthy(vx)


def test_the_pod_traffic_really_is_vxlan(vx: MeshLab) -> None:
    node1, node2, _ = vx.nodes
    before = json.loads(node1.ns.ip("-s", "-j", "link", "show", "flannel.1"))[0]["stats64"]["tx"]["packets"]
    assert vx.curl(node1, node2.pods[0]) == served(node2)
    after = json.loads(node1.ns.ip("-s", "-j", "link", "show", "flannel.1"))[0]["stats64"]["tx"]["packets"]
    assert after > before
    # and the stand-in keeps the lease it started with: flanneld's 24 h TTL, on a real etcd lease
    lease_id = json.loads(vx.etcd.ctl("get", f"{vx.prefix}/subnets/{node2.lease.replace('/', '-')}",
                                      "-w", "json").stdout)["kvs"][0]["lease"]
    ttl = vx.etcd.ctl("lease", "timetolive", format(lease_id, "x")).stdout
    assert re.search(r"granted with TTL\(86400s\)", ttl), ttl


def test_drop_udp_blocks_only_that_node(vx: MeshLab) -> None:
    node1, node2, node3 = vx.nodes
    vx.drop_udp(node3)
    assert "-A INPUT -p udp -m udp --dport 8472 -j DROP" in node3.ns.exec("iptables", "-S", "INPUT").stdout
    assert reach(vx, node1, QUICK) == {"node2": True, "node3": False}
    assert reach(vx, node2, QUICK) == {"node1": True, "node3": False}
    assert vx.ping(node1, node3.address) == "answered"  # the underlay itself is fine
    vx.heal()
    assert_healthy(vx)


def test_underlay_mtu_is_a_path_mtu_black_hole(vx: MeshLab) -> None:
    node1, node2, node3 = vx.nodes
    vx.underlay_mtu(node3, 1400)
    assert json.loads(node3.ns.ip("-j", "link", "show", "eth0"))[0]["mtu"] == 1500
    assert json.loads(vx.underlay.ip("-j", "link", "show", "br0"))[0]["mtu"] == 1500  # pinned, not following
    assert vx.curl(node1, node3.pods[0]) == served(node3)  # small packets pass
    assert vx.ping(node1, node3.pods[0]) == "answered"
    assert vx.ping(node1, node3.pods[0], size=1372, df=True) == "silent"  # 1400 B + 50 of vxlan: dropped, no ICMP
    assert vx.ping(node1, node2.pods[0], size=1372, df=True) == "answered"
    assert vx.ping(node1, node3.address, size=1472, df=True) == "silent"  # the underlay's own 1500
    assert vx.ping(node1, node2.pods[0], size=1423, df=True) == "too-big"  # over flannel.1's 1450: the kernel says so
    vx.heal()
    assert vx.ping(node1, node3.pods[0], size=1372, df=True) == "answered"
    assert_healthy(vx)


def test_forward_drop_cuts_that_nodes_pods(vx: MeshLab) -> None:
    node1, node2, node3 = vx.nodes
    vx.forward_drop(node3)
    assert "-P FORWARD DROP" in node3.ns.exec("iptables", "-S", "FORWARD").stdout
    assert reach(vx, node1, QUICK) == {"node2": True, "node3": False}
    assert reach(vx, node2, QUICK) == {"node1": True, "node3": False}
    assert vx.curl(node3, node3.pods[0]) == served(node3)  # the node itself is not forwarding
    vx.heal()
    assert_healthy(vx)


def test_stale_neighbour_stays_and_breaks_that_pair(vx: MeshLab) -> None:
    node1, node2, node3 = vx.nodes
    vx.stale_neighbour(node1, node2, "02:00:00:00:de:ad")
    assert reach(vx, node1, QUICK) == {"node2": False, "node3": True}
    # the stand-in acts on lease events only: after it has handled a new lease and its removal, the
    # neighbour a test corrupted is still corrupted
    fake = vx.add_fake_leases(1)[0]
    vx.remove_fake_lease(fake)
    for node in vx.nodes:
        lab.wait_for(lambda node=node: fake.subnet not in {r[0] for r in vx.programmed(node)["routes"]}, 10,
                     f"{node.name} to remove the lease's route")
        assert vx.programmed(node) == vx.expected(node) or node is node1
    neigh = {n["dst"]: n["lladdr"] for n in vx.neighbours(node1)}
    assert neigh[node2.overlay_ip] == "02:00:00:00:de:ad"
    vx.heal()
    assert_healthy(vx)


def test_a_lease_that_comes_and_goes(vx: MeshLab) -> None:
    fake = vx.add_fake_leases(1)[0]
    for node in vx.nodes:
        got = vx.programmed(node)
        sn = ipaddress.IPv4Network(fake.subnet)
        assert (fake.subnet, str(sn.network_address), "flannel.1", "onlink") in got["routes"]
        assert (str(sn.network_address), fake.vtep_mac) in got["neigh"]
        assert (fake.vtep_mac, fake.public_ip) in got["fdb"]
    vx.remove_fake_lease(fake)
    for node in vx.nodes:
        lab.wait_for(lambda node=node: vx.programmed(node) == vx.expected(node), 10, f"{node.name} to drop the lease")
    assert_healthy(vx)


def test_answers_file_fits_the_lab(vx: MeshLab) -> None:
    node1 = vx.nodes[0]
    path = vx.answers(node1)
    done = vx.run_in(node1, [sys.executable, "-m", "wizard", "validate", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    # run in the node, the wizard reaches the lab's etcd and finds the lab's config already there
    done = vx.run_in(node1, [sys.executable, "-m", "wizard", "plan", str(path), "--only", "etcd",
                             "--root", str(node1.root)])
    assert "already holds this config" in done.stdout + done.stderr, done.stdout + done.stderr


def test_duplicate_public_ip_takes_over_the_lease() -> None:
    with mesh_lab() as mesh:
        node1, node2, node3 = mesh.nodes
        old_mac = mesh.vxlan(node1)["address"]
        node4 = mesh.duplicate_public_ip(node1)
        assert (node4.address, node4.public_ip) == ("192.168.64.14", "192.168.64.11")
        assert node4.lease == node1.lease  # flannel reuses the lease registered for its PublicIP
        new_mac = mesh.vxlan(node4)["address"]
        assert mesh.vxlan(node4)["linkinfo"]["info_data"]["local"] == "192.168.64.11"
        leases = mesh.leases()
        assert len(leases) == 3
        assert leases[node1.lease.replace("/", "-")]["BackendData"]["VtepMAC"] == new_mac
        for other in (node2, node3):
            neigh = {n["dst"]: n["lladdr"] for n in mesh.neighbours(other)}
            assert neigh[node1.overlay_ip] == new_mac
            fdb = {(f["mac"], f.get("dst")) for f in mesh.fdb(other)}
            assert {(new_mac, "192.168.64.11"), (old_mac, "192.168.64.11")} <= fdb  # flannel leaves the old one
        assert reach(mesh, node2, QUICK) == {"node1": False, "node3": True, "node4": False}
        assert mesh.curl(node1, node3.pods[0], timeout=QUICK) is None  # the reply goes to node4's VTEP MAC


def test_host_gw_with_a_node_off_the_segment() -> None:
    with mesh_lab(backend="host-gw", off_segment=1) as mesh:
        node1, node2, node3 = mesh.nodes
        assert node3.address == "192.168.65.13"
        assert mesh.ping(node1, node3.address) == "answered"  # reachable, through the router
        assert {k: v["BackendType"] for k, v in mesh.leases().items()} == dict.fromkeys(mesh.leases(), "host-gw")
        assert mesh.leases()[node1.lease.replace("/", "-")]["BackendData"] is None
        assert node1.subnet_env()["FLANNEL_MTU"] == "1500"
        assert "flannel.1" not in node1.ns.ip("link")
        assert f"{node2.lease} via 192.168.64.12 dev eth0 " in node1.ns.ip("route").splitlines()
        assert mesh.programmed(node1)["routes"] == {(node2.lease, "192.168.64.12", "eth0")}
        assert mesh.programmed(node3)["routes"] == set()
        assert reach(mesh, node1, QUICK) == {"node2": True, "node3": False}
        assert reach(mesh, node3, QUICK) == {"node1": False, "node2": False}
        assert (f"Error adding route to {{Ifindex: 2 Dst: {node3.lease} Src: <nil> Gw: 192.168.65.13 Flags: [] "
                "Table: 0 Realm: 0}: network is unreachable") in node1.log.read_text()


def test_host_gw_on_one_segment_is_healthy() -> None:
    with mesh_lab(backend="host-gw", pods=2) as mesh:
        assert_healthy(mesh)
        node1, node2, _ = mesh.nodes
        assert node2.pods == [str(ipaddress.IPv4Network(node2.lease).network_address + k) for k in (2, 3)]
        assert mesh.curl(node1, node2.pods[1]) == f"served by pod {node2.pods[1]} on node2\n"
        assert all(len(mesh.programmed(n)["routes"]) == 2 for n in mesh.nodes)


def test_bench_fifty_leases() -> None:
    with mesh_lab() as mesh:
        fakes = mesh.add_fake_leases(47)
        assert len(mesh.leases()) == 50
        node1 = mesh.nodes[0]
        assert len(mesh.programmed(node1)["routes"]) == 49
        assert mesh.ping(node1, fakes[-1].public_ip) == "answered"
        assert mesh.curl(node1, str(ipaddress.IPv4Network(fakes[0].subnet).network_address + 2), timeout=QUICK) is None
        assert_healthy(mesh)


def test_everything_goes_even_when_setup_fails_half_way(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[MeshLab] = []

    def broken(self: MeshLab, node: MeshNode, count: int = 1) -> None:
        made.append(self)
        if node.name == "node2":
            raise RuntimeError("setup fails here")
        original(self, node, count)

    original = MeshLab._add_pods
    monkeypatch.setattr(MeshLab, "_add_pods", broken)
    with pytest.raises(RuntimeError, match="setup fails here"), mesh_lab():
        pass
    mesh = made[0]
    assert mesh.nodes and all(n.flanneld is not None and n.flanneld.returncode == 0 for n in mesh.nodes)  # SIGTERM: clean
    assert not [ns for ns in lab.run("ip", "netns", "list").stdout.split() if mesh.id in ns]
    assert not mesh.tmp.exists() and not mesh.etcd.dir.exists()
    assert mesh.etcd.proc is not None and mesh.etcd.proc.poll() is not None
    for node in mesh.nodes:
        for server in node.servers:
            assert server.poll() is not None
    assert subprocess.run(["pgrep", "-f", str(mesh.tmp)], capture_output=True, timeout=10).returncode == 1


def test_the_lab_names_only_its_own_things(vx: MeshLab) -> None:
    names = [ns.name for ns in vx.namespaces]
    assert all(n.startswith(f"{lab.NS_PREFIX}{vx.id}-") for n in names)
    assert f"{lab.NS_PREFIX}{vx.id}-ul" in names
    assert vx.endpoint == f"http://{UNDERLAY_GW}:2379"
    assert vx.tmp.is_dir() and vx.tmp.parent == Path(tempfile.gettempdir())  # pytest's scratch dir, removed at the end
