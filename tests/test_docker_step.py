"""The docker step in a real namespace: bridge moved onto the subnet, routes respected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard

SUBNET_ENV = "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.46.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
ANSWERS = "version: 1\ndocker:\n  daemon_json: null\n  opts:\n    combined_key: DOCKER_NETWORK_OPTIONS\n"


@pytest.fixture
def ns_with_bridge() -> Iterator[lab.Netns]:
    ns = lab.Netns()
    try:
        ns.ip("link", "add", "docker0", "type", "bridge")
        ns.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
        ns.ip("addr", "add", "192.0.2.1/24", "dev", "docker0")
        ns.ip("-6", "addr", "add", "fd00::1/64", "dev", "docker0")
        ns.ip("link", "set", "docker0", "up")
        yield ns
    finally:
        ns.delete()


def bridge(ns: lab.Netns) -> tuple[int, list[str], list[str]]:
    data = json.loads(ns.ip("-j", "addr", "show", "docker0"))[0]
    v4 = [f"{a['local']}/{a['prefixlen']}" for a in data["addr_info"] if a["family"] == "inet"]
    v6 = [a["local"] for a in data["addr_info"] if a["family"] == "inet6" and not a["local"].startswith("fe80")]
    return data["mtu"], v4, v6


def prepare(tmp_path: Path, env: dict[str, str]) -> Path:
    root = Path(env["FW_TEST_ROOT"])
    (root / "run/flannel").mkdir(parents=True)
    (root / "run/flannel/subnet.env").write_text(SUBNET_ENV)
    (tmp_path / "a.yaml").write_text(ANSWERS)
    return root


def test_bridge_moves_onto_the_subnet_and_back(ns_with_bridge: lab.Netns, standin_env: dict[str, str], tmp_path: Path) -> None:
    ns = ns_with_bridge
    root = prepare(tmp_path, standin_env)
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "docker", "--yes", "--root", str(root),
                        env=standin_env, netns=ns)
    assert result.returncode == 0, result.stdout + result.stderr
    assert bridge(ns) == (1450, ["172.30.46.1/24"], ["fd00::1"])  # other IPv4 gone, IPv6 left alone
    assert (root / "run/docker_opts.env").read_text() == (
        'DOCKER_OPT_BIP="--bip=172.30.46.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        'DOCKER_NETWORK_OPTIONS=" --bip=172.30.46.1/24 --ip-masq=false --mtu=1450"\n'
    )
    assert not (root / "etc/docker/daemon.json").exists()  # daemon_json: null leaves it alone
    undo = run_wizard("undo", "--root", str(root), env=standin_env, netns=ns)
    assert undo.returncode == 0, undo.stdout
    mtu, v4, v6 = bridge(ns)
    assert (mtu, sorted(v4), v6) == (1500, ["172.17.0.1/16", "192.0.2.1/24"], ["fd00::1"])


def test_a_route_to_the_subnet_via_a_gateway_is_refused(ns_with_bridge: lab.Netns, standin_env: dict[str, str], tmp_path: Path) -> None:
    ns = ns_with_bridge
    ns.ip("route", "add", "172.30.46.0/24", "via", "192.0.2.254")
    root = prepare(tmp_path, standin_env)
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "docker", "--yes", "--root", str(root),
                        env=standin_env, netns=ns)
    assert result.returncode == 1
    assert "Your routing table already contains the subnet: 172.30.46.0/24 via 192.0.2.254 dev docker0" in result.stdout
    assert bridge(ns)[1] == ["172.17.0.1/16", "192.0.2.1/24"]
    assert not (root / "run/docker_opts.env").exists()


def test_docker0_on_the_flannel_network_is_an_overlap(ns_with_bridge: lab.Netns, standin_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nnetwork:\n  cidr: 172.16.0.0/12\n")
    (tmp_path / "r").mkdir()
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "network", "--yes", "--root", str(tmp_path / "r"),
                        env=standin_env, netns=ns_with_bridge)
    assert result.returncode == 1
    assert "docker0 is on 172.17.0.0/16, which overlaps the flannel network 172.16.0.0/12" in result.stdout


def test_a_wider_gateway_route_passes_as_mk_docker_opts_lets_it(ns_with_bridge: lab.Netns, standin_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    """The script greps for the lease itself: 172.30.0.0/16 via a gateway is not its refusal."""
    ns = ns_with_bridge
    ns.ip("route", "add", "172.30.0.0/16", "via", "192.0.2.254")
    root = prepare(tmp_path, standin_env)
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "docker", "--yes", "--root", str(root),
                        env=standin_env, netns=ns)
    assert result.returncode == 0, result.stdout + result.stderr
    assert bridge(ns)[1] == ["172.30.46.1/24"]


def test_cni0_holding_the_lease_is_refused(ns_with_bridge: lab.Netns, standin_env: dict[str, str], tmp_path: Path) -> None:
    """flannel's CNI plugin put cni0 on this node's lease: docker0 must not go onto the same subnet."""
    ns = ns_with_bridge
    ns.ip("link", "add", "cni0", "type", "bridge")
    ns.ip("addr", "add", "172.30.46.1/24", "dev", "cni0")
    ns.ip("link", "set", "cni0", "up")
    root = prepare(tmp_path, standin_env)
    result = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "docker", "--yes", "--root", str(root),
                        env=standin_env, netns=ns)
    assert result.returncode == 1, result.stdout
    assert "cni0 already holds 172.30.46.1/24 on this node's lease 172.30.46.0/24" in result.stdout
    assert "ip link delete cni0" in result.stdout
    assert bridge(ns)[1] == ["172.17.0.1/16", "192.0.2.1/24"]  # docker0 untouched
    assert not (root / "run/docker_opts.env").exists()
    ns.ip("addr", "flush", "dev", "cni0")
    ns.ip("addr", "add", "10.244.3.1/24", "dev", "cni0")  # another subnet: not this lease, no refusal
    again = run_wizard("apply", str(tmp_path / "a.yaml"), "--only", "docker", "--yes", "--root", str(root),
                       env=standin_env, netns=ns)
    assert again.returncode == 0, again.stdout + again.stderr
