"""What the network step says about MTU and dual-stack, and which UDP ports preflight checks for each backend
(a real socket holds a port here, and the real node's bind test must see it)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from wizard.answers import Answers, parse
from wizard.node import Node
from wizard.steps import Context, network, preflight

FACTS = network.Facts(addresses=[("eth0", "192.168.56.11/24")], routes=[], bridge=None, iface="eth0", iface_mtu=1500)


def answers(network_yaml: str) -> Answers:
    return parse("version: 1\nnetwork:\n" + network_yaml)


def notes(text: str, facts: network.Facts = FACTS) -> list[tuple[str, str]]:
    return [(n.status, n.message) for n in network.plan(answers(text), facts).notes]


@pytest.mark.parametrize(("backend", "said"), [
    ("{type: vxlan}", "FLANNEL_MTU will be 1450 (MTU 1500 of eth0 − 50 for vxlan)"),
    ("{type: vxlan, mtu: 1400}", "FLANNEL_MTU will be 1350 (Backend.MTU 1400 − 50 for vxlan)"),
    ("{type: wireguard, mtu: 1420}", "FLANNEL_MTU will be 1340 (Backend.MTU 1420 − 80 for wireguard)"),
    ("{type: host-gw}", "FLANNEL_MTU will be 1500 (MTU 1500 of eth0, host-gw adds no header)"),
    ("{type: ipsec, udp_encap: true, psk_env: FW_TEST_PSK}", "FLANNEL_MTU will be 1415 (MTU 1500 of eth0 − 85 for ipsec)"),
])
def test_the_mtu_note_says_how_flannel_gets_it(backend: str, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_PSK", "k" * 96)
    assert ("ok", said) in notes(f"  backend: {backend}\n")


def test_a_backend_mtu_above_the_interfaces_is_a_warning() -> None:
    found = network.plan(answers("  backend: {type: vxlan, mtu: 9000}\n"), FACTS).notes
    mtu = [n for n in found if "FLANNEL_MTU" in n.message]
    assert [(n.status, n.message) for n in mtu] == [
        ("warn", "FLANNEL_MTU will be 8950 (Backend.MTU 9000 − 50 for vxlan), but eth0 carries only 1500")]
    assert "at most 1500" in mtu[0].detail


def test_dual_stack_is_counted_and_docker_s_missing_ipv6_is_said() -> None:
    said = notes("  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n")
    assert ("ok", "fc00::/48: 65535 node IPv6 subnets /64 (fc00:0:0:1:: … fc00:0:0:ffff::)") in said
    assert any(status == "warn" and "FLANNEL_IPV6_SUBNET" in message for status, message in said)
    assert not any("IPv6" in message for _, message in notes("  cidr: 172.30.0.0/16\n"))


# ---------------------------------------------------------------- preflight: UDP ports


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A UDP port held by a real socket for the test's length."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def port_findings(text: str, root: Path) -> dict[str, preflight.Finding]:
    node = Node(str(root))
    try:
        found = preflight.findings(Context(answers(text), node))
    finally:
        node.close()
    return {f.name: f for f in found if f.name.startswith("Port-")}


def test_wireguard_listen_port_v6_is_checked_when_ipv6_is_on(busy_port: int, tmp_path: Path) -> None:
    text = f"  backend: {{type: wireguard, listen_port_v6: {busy_port}}}\n"
    assert list(port_findings(text, tmp_path)) == ["Port-51820"]  # IPv4 only: no flannel-wg-v6, no second port
    found = port_findings("  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n" + text, tmp_path)
    assert list(found) == ["Port-51820", f"Port-{busy_port}"]
    v6 = found[f"Port-{busy_port}"]
    assert (v6.severity, v6.ok) == ("ERROR", False)
    assert v6.message == f"UDP port {busy_port} (wireguard ListenPortV6) is in use by another program"


def test_one_wireguard_device_listens_on_one_port(busy_port: int, tmp_path: Path) -> None:
    text = (f"  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n"
            f"  backend: {{type: wireguard, mode: auto, listen_port_v6: {busy_port}}}\n")
    assert list(port_findings(text, tmp_path)) == ["Port-51820"]


def test_a_busy_vxlan_port_is_an_error(busy_port: int, tmp_path: Path) -> None:
    found = port_findings(f"  backend: {{type: vxlan, port: {busy_port}}}\n", tmp_path)
    assert [(f.name, f.severity, f.ok) for f in found.values()] == [(f"Port-{busy_port}", "ERROR", False)]


def test_ipsec_checks_ike_ports_as_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_PSK", "k" * 96)
    found = port_findings("  backend: {type: ipsec, psk_env: FW_TEST_PSK}\n", tmp_path)
    assert [(f.name, f.severity) for f in found.values()] == [("Port-500", "WARNING"), ("Port-4500", "WARNING")]
    assert "charon" in found["Port-500"].message


@pytest.fixture
def ns_with_eth0() -> Iterator[lab.Netns]:
    """A namespace whose eth0 (a veth) holds 192.168.56.11/24 with MTU 1450, unlike the 1500 default."""
    ns = lab.Netns()
    try:
        ns.ip("link", "add", "eth0", "mtu", "1450", "type", "veth", "peer", "name", "eth0-peer")
        ns.ip("addr", "add", "192.168.56.11/24", "dev", "eth0")
        ns.ip("link", "set", "eth0", "up")
        yield ns
    finally:
        ns.delete()


def _network_lines(ns: lab.Netns, tmp_path: Path, iface: str) -> list[str]:
    (tmp_path / "a.yaml").write_text(f"version: 1\nflanneld:\n  iface: {iface}\n")
    result = run_wizard("plan", str(tmp_path / "a.yaml"), "--only", "network", "--root", str(tmp_path), netns=ns)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "FLANNEL_MTU" in line]


def test_an_iface_given_as_an_address_takes_the_mtu_of_the_link_that_holds_it(ns_with_eth0: lab.Netns,
                                                                             tmp_path: Path) -> None:
    assert _network_lines(ns_with_eth0, tmp_path, "192.168.56.11") == [
        "[ ok ] network: FLANNEL_MTU will be 1400 (MTU 1450 of eth0 (192.168.56.11) − 50 for vxlan)"]


@pytest.mark.parametrize("iface", ["192.168.56.99", "eth7"])
def test_an_iface_that_is_not_here_gets_no_confident_mtu(ns_with_eth0: lab.Netns, tmp_path: Path, iface: str) -> None:
    (line,) = _network_lines(ns_with_eth0, tmp_path, iface)
    assert line.startswith(f"[warn] network: FLANNEL_MTU would be 1450 (MTU 1500 of {iface} − 50 for vxlan), but "
                           f"{iface} is not a link or an address of this node, so its MTU is unknown")
