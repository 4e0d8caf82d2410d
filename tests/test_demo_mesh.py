"""The demo's other nodes: their leases in etcd in flannel's own format, the overlay state flannel's
vxlan backend would have programmed on this node for them, and the answers a real network would give
the mesh step's probes for each scenario's faults (the simulated mesh, tested as the demo uses it)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from tests.tui import FAST
from wizard import scenarios
from wizard.node.meshinfo import Probe
from wizard.node.simulated import SimulatedNode

PREFIX = "/kube-centos/network"
CONFIG = '{"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}'


def started(tmp_path: Path, scenario: str | dict[str, Any] = "mesh-broken", config: str = CONFIG) -> SimulatedNode:
    """A demo node after the wizard's etcd and flanneld steps: the config in etcd, flanneld restarted."""
    profile = scenarios.load(scenario) if isinstance(scenario, str) else scenario
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    node.store.put(f"{PREFIX}/config", config)
    node.files.write("/etc/sysconfig/flanneld",
                     f'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"\nFLANNEL_ETCD_PREFIX="{PREFIX}"\n'.encode())
    assert node.commands.run("systemctl", "restart", "flanneld").rc == 0
    return node


def outcomes(node: SimulatedNode, probes: list[Probe]) -> list[str]:
    return [r.outcome for r in node.mesh.probe(probes, timeout=1.0)]


def test_the_peers_take_their_leases_when_flanneld_starts_in_flannels_format(tmp_path: Path) -> None:
    node = SimulatedNode(scenarios.load("mesh-broken"), speed=FAST, root=str(tmp_path / "demo"))
    # before flanneld runs: only the lease the scenario's etcd already held
    assert [k for k, _ in node.store.list(f"{PREFIX}/subnets/")] == [f"{PREFIX}/subnets/172.30.14.0-24"]
    assert node.mesh.overlay("flannel.1").device is None
    node = started(tmp_path)
    leases = dict(node.store.list(f"{PREFIX}/subnets/"))
    assert sorted(leases) == [f"{PREFIX}/subnets/172.30.{n}.0-24" for n in (1, 14, 27, 40)]
    # exactly as flanneld writes one (facts.md): Go's compact JSON, PublicIPv6 null, vxlan's VNI and VtepMAC
    assert leases[f"{PREFIX}/subnets/172.30.40.0-24"] == (
        '{"PublicIP":"192.168.56.13","PublicIPv6":null,"BackendType":"vxlan",'
        '"BackendData":{"VNI":1,"VtepMAC":"3a:91:e4:5d:c2:07"}}')
    assert json.loads(leases[f"{PREFIX}/subnets/172.30.1.0-24"])["PublicIP"] == "192.168.56.11"  # this node's
    # the lease the peer already held is its own, not taken twice
    assert sum(json.loads(v)["PublicIP"] == "192.168.56.10" for v in leases.values()) == 1
    assert "FLANNEL_SUBNET=172.30.1.1/24" in (node.files.read_text("/run/flannel/subnet.env") or "")


def test_the_overlay_is_what_flannels_vxlan_backend_programs_for_the_other_leases(tmp_path: Path) -> None:
    overlay = started(tmp_path).mesh.overlay("flannel.1")
    device = overlay.device
    assert device is not None
    assert (device.vni, device.port, device.local, device.learning, device.mtu, device.ipv4) == \
        (1, 8472, "192.168.56.11", False, 1450, ("172.30.1.0/32",))
    flannel_routes = [str(r) for r in overlay.routes if r.dev == "flannel.1"]
    assert flannel_routes == [f"172.30.{n}.0/24 via 172.30.{n}.0 dev flannel.1 onlink" for n in (14, 27, 40)]
    assert "default via 192.168.56.1 dev eth0" not in flannel_routes  # the main table's own routes are there too
    assert any(r.dst.prefixlen == 0 and r.gateway == "192.168.56.1" for r in overlay.routes)
    assert [(n.dst, n.lladdr, n.permanent) for n in overlay.neighbours] == [
        ("172.30.14.0", "6e:4c:1a:0b:9d:21", True), ("172.30.27.0", "a2:3f:5c:71:08:be", True),
        ("172.30.40.0", "3a:91:e4:5d:c2:07", True)]
    assert [(f.lladdr, f.dst) for f in overlay.fdb] == [
        ("6e:4c:1a:0b:9d:21", "192.168.56.10"), ("a2:3f:5c:71:08:be", "192.168.56.12"),
        ("3a:91:e4:5d:c2:07", "192.168.56.13")]
    # another device's name: the routes are the kernel's, the device and its tables are not that one
    other = started(tmp_path / "again").mesh.overlay("flannel.2")
    assert other.device is None and not other.neighbours and len(other.routes) == len(overlay.routes)


def test_a_peer_behind_a_firewall_dropping_udp_8472_answers_only_on_the_underlay(tmp_path: Path) -> None:
    node = started(tmp_path)
    healthy = [Probe("icmp", "192.168.56.12"), Probe("udp", "192.168.56.12", port=8472),
               Probe("icmp", "172.30.27.0"), Probe("icmp", "172.30.27.1")]
    blocked = [Probe("icmp", "192.168.56.13"), Probe("udp", "192.168.56.13", port=8472),
               Probe("icmp", "172.30.40.0"), Probe("icmp", "172.30.40.1")]
    # vxlan's socket takes a datagram that is no VXLAN frame and says nothing: silent on a healthy peer too
    assert outcomes(node, healthy) == ["answered", "silent", "answered", "answered"]
    assert outcomes(node, blocked) == ["answered", "silent", "silent", "silent"]
    # nothing listening on another port: ICMP port unreachable comes back
    assert outcomes(node, [Probe("udp", "192.168.56.12", port=9999)]) == ["refused"]


def test_path_mtu_a_down_peer_a_rejecting_firewall_and_a_peer_without_its_bridge(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["mesh"] = {"peers": [
        {"public_ip": "192.168.56.21", "subnet": "172.30.21.0/24", "mtu": 1400},
        {"public_ip": "192.168.56.22", "subnet": "172.30.22.0/24", "down": True},
        {"public_ip": "192.168.56.23", "subnet": "172.30.23.0/24", "udp_rejected": [8472]},
        {"public_ip": "192.168.56.24", "subnet": "172.30.24.0/24", "bridge": False},
    ]}
    node = started(tmp_path, profile)
    # a path that carries 1400 bytes: small pings pass, a full-size vxlan frame vanishes without a word
    assert outcomes(node, [Probe("icmp", "172.30.21.0", size=56, df=True),
                           Probe("icmp", "172.30.21.0", size=1322, df=True),
                           Probe("icmp", "172.30.21.0", size=1323, df=True),
                           Probe("icmp", "172.30.21.0", size=1422, df=True),
                           Probe("icmp", "192.168.56.21", size=1372, df=True),
                           Probe("icmp", "192.168.56.21", size=1373, df=True)]) == \
        ["answered", "answered", "silent", "silent", "answered", "silent"]
    # larger than flannel.1 with DF: this kernel refuses it and names the device's MTU
    [too_big] = node.mesh.probe([Probe("icmp", "172.30.21.0", size=1423, df=True)], timeout=1.0)
    assert (too_big.outcome, too_big.detail) == ("too-big", "1450")
    # off, on this link: ARP goes unanswered and the kernel says so
    assert outcomes(node, [Probe("icmp", "192.168.56.22"), Probe("icmp", "172.30.22.0")]) == ["unreachable", "silent"]
    # REJECT answers the UDP probe; the tunnel is still closed
    assert outcomes(node, [Probe("udp", "192.168.56.23", port=8472), Probe("icmp", "172.30.23.0")]) == \
        ["refused", "silent"]
    # its flannel.1 answers, its docker0 does not hold .1
    assert outcomes(node, [Probe("icmp", "172.30.24.0"), Probe("icmp", "172.30.24.1")]) == ["answered", "silent"]
    assert node.mesh.gateway_to("192.168.56.24") is None and node.mesh.gateway_to("10.9.9.9") == "192.168.56.1"


def test_a_peer_in_a_scenario_must_be_spelled_right() -> None:
    profile = scenarios.load("fresh-node")
    profile["mesh"] = {"peers": [{"public_ip": "192.168.56.30", "udp_block": [8472]}]}
    with pytest.raises(ValueError, match="mesh peer 1: unknown key.s. udp_block"):
        SimulatedNode(profile, speed=FAST)


def test_every_scenario_has_healthy_peers(tmp_path: Path) -> None:
    """One node proves nothing across nodes: each scenario has other nodes to reach."""
    for name in scenarios.names():
        peers = SimulatedNode(scenarios.load(name), speed=FAST, root=str(tmp_path / name)).mesh.peers
        healthy = [p for p in peers if not (p.down or p.udp_blocked or p.udp_rejected or p.mtu or not p.bridge)]
        assert len(healthy) >= 2, name


def test_on_a_dual_stack_network_a_peer_needs_an_ipv6_address_to_take_a_lease(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["etcd"]["keys"] = {}
    profile["mesh"] = {"peers": [{"public_ip": "192.168.56.31", "public_ipv6": "fd00::31", "subnet": "172.30.31.0/24",
                                  "vtep_mac": "aa:bb:cc:dd:ee:10"},
                                 {"public_ip": "192.168.56.32", "subnet": "172.30.32.0/24"}]}
    config = ('{"Network": "172.30.0.0/16", "SubnetLen": 24, "EnableIPv6": true, "IPv6Network": "fc00::/48", '
              '"Backend": {"Type": "vxlan"}}')
    node = started(tmp_path, profile, config)
    leases = dict(node.store.list(f"{PREFIX}/subnets/"))
    peer = f"{PREFIX}/subnets/172.30.31.0-24&fc00:0:0:2::-64"  # the next free IPv6 subnet after this node's
    assert sorted(leases) == sorted([f"{PREFIX}/subnets/172.30.1.0-24&fc00:0:0:1::-64", peer])
    assert leases[peer] == ('{"PublicIP":"192.168.56.31","PublicIPv6":"fd00::31","BackendType":"vxlan",'
                            '"BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:10"},'
                            '"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:11"}}')
    assert [str(r) for r in node.mesh.overlay("flannel.1").routes if r.dev == "flannel.1"] == \
        ["172.30.31.0/24 via 172.30.31.0 dev flannel.1 onlink"]


def test_vxlan_with_direct_routing_routes_on_link_peers_without_the_tunnel(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["etcd"]["keys"] = {}
    profile["mesh"] = {"peers": [{"public_ip": "192.168.56.41", "subnet": "172.30.41.0/24"},
                                 {"public_ip": "10.20.0.42", "subnet": "172.30.42.0/24"}]}  # past the router
    node = started(tmp_path, profile,
                   '{"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "DirectRouting": true}}')
    overlay = node.mesh.overlay("flannel.1")
    flannel_routes = [str(r) for r in overlay.routes if r.dst.subnet_of(ipaddress.IPv4Network("172.30.0.0/16"))]
    # vxlan_network.go: a direct route to a node on this link, the tunnel (neighbour and fdb) to the other
    assert flannel_routes == ["172.30.41.0/24 via 192.168.56.41 dev eth0", "172.30.42.0/24 via 172.30.42.0 dev flannel.1 onlink"]
    assert [n.dst for n in overlay.neighbours] == ["172.30.42.0"] and [f.dst for f in overlay.fdb] == ["10.20.0.42"]
    assert outcomes(node, [Probe("icmp", "172.30.41.1"), Probe("icmp", "172.30.41.0"), Probe("icmp", "172.30.42.1")]) == \
        ["answered", "answered", "answered"]


@pytest.mark.parametrize("backend", [{"type": "vxlan"}, {"type": "vxlan", "vni": 4, "port": 4789},
                                     {"type": "vxlan", "direct_routing": True}, {"type": "host-gw"},
                                     {"type": "udp"}, {"type": "wireguard"}],
                         ids=["vxlan", "vxlan-vni4-4789", "vxlan-direct", "host-gw", "udp", "wireguard"])
def test_the_mesh_step_finds_the_demos_healthy_peers_healthy_on_every_backend(tmp_path: Path,
                                                                            backend: dict[str, Any]) -> None:
    """The engine's own mesh step on fresh-node, whatever backend the operator picks: the peers' flanneld
    follow the config (the one that held a vxlan lease re-registers), and what SimMesh programs and
    answers is what flannel and a healthy network would give for that backend."""
    from wizard.session import Session

    profile = scenarios.load("fresh-node")
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    session = Session(node, scenario=profile)
    session.draft["network"]["backend"] = backend
    result = session.runner(session.answers(), lambda e: None, dry_run=False).run()
    mesh = result.step("mesh")
    assert result.code == 0 and mesh is not None, result.message
    assert [(c.status, c.subject) for c in mesh.checks if c.subject] == [("ok", "192.168.56.10"), ("ok", "192.168.56.12")]
    leases = [json.loads(v) for _k, v in node.store.list(f"{PREFIX}/subnets/")]
    assert {v["BackendType"] for v in leases} == {backend["type"]}


@pytest.mark.parametrize("fault, hop, said", [
    ({"udp_blocked": [8472]}, "port", "vxlan packets (UDP 8472) are dropped between the nodes"),
    ({"udp_rejected": [8472]}, "port", "nothing listens on UDP 8472 there (ICMP port unreachable came back)"),
    ({"down": True}, "underlay", "its PublicIP does not answer ICMP (Destination Host Unreachable)"),
    ({"bridge": False}, "bridge", "its flannel.1 answers, but its bridge 172.30.50.1 does not"),
    ({"mtu": 1400}, "path MTU", "the largest that gets through is 1350 bytes"),
], ids=["udp-blocked", "udp-rejected", "down", "no-bridge", "path-mtu"])
def test_the_mesh_step_names_each_simulated_fault_at_its_hop(tmp_path: Path, fault: dict[str, Any], hop: str,
                                                             said: str) -> None:
    """Each fault a scenario can give a peer, judged by the engine's own mesh step: the answers SimMesh
    gives are the ones that lead the step to the hop a real network's would."""
    from wizard.session import Session

    profile = scenarios.load("fresh-node")
    profile["mesh"]["peers"] = [*profile["mesh"]["peers"],
                                {"public_ip": "192.168.56.50", "subnet": "172.30.50.0/24", **fault}]
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    session = Session(node, scenario=profile)
    result = session.runner(session.answers(), lambda e: None, dry_run=False).run()
    mesh = result.step("mesh")
    assert result.failed_step is mesh and mesh is not None
    peers = {c.subject: c for c in mesh.checks if c.subject}
    assert [peers[ip].status for ip in ("192.168.56.10", "192.168.56.12")] == ["ok", "ok"]
    broken = peers["192.168.56.50"]
    assert (broken.status, broken.hop) == ("failed", hop)
    assert said in broken.message, broken.message


def test_simmesh_takes_the_calls_meshlike_lists() -> None:
    """The engine is typed against MeshLike: the demo's mesh takes each call with the protocol's own
    parameters (so a keyword call means the same on both nodes)."""
    import inspect

    from wizard.node import MeshLike
    from wizard.node.simulated import SimMesh

    for name in ("overlay", "probe", "gateway_to"):
        assert list(inspect.signature(getattr(SimMesh, name)).parameters) == \
            list(inspect.signature(getattr(MeshLike, name)).parameters), name
