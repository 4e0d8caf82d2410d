"""Node identity: leases that share a PublicIP (every Vagrant VM is 10.0.2.15 on eth0), dual-stack lease
keys, and a flanneld.iface this node does not have — against a real etcd and the stand-ins."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests import lab, unitfixtures
from tests.conftest import run_wizard
from tests.engine import run_steps

VAGRANT = "10.0.2.15"


def lease_value(ip: str) -> str:
    return json.dumps({"PublicIP": ip, "PublicIPv6": None, "BackendType": "vxlan",
                       "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}})


def fresh_prefix() -> str:
    return f"/fwtest-{uuid.uuid4().hex[:8]}/network"


def answers(endpoint: str, prefix: str, extra: str = "") -> str:
    return f'version: 1\netcd:\n  endpoints: ["{endpoint}"]\n  prefix: {prefix}\nflanneld:\n  wait_s: 10\n{extra}'


def test_the_etcd_step_names_leases_that_share_a_public_ip(etcd: lab.Etcd, tmp_path: Path) -> None:
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.5.0-24", lease_value(VAGRANT))
    etcd.ctl("put", f"{prefix}/subnets/172.30.9.0-24", lease_value(VAGRANT))
    etcd.ctl("put", f"{prefix}/subnets/172.30.12.0-24", lease_value("192.168.56.12"))
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"], dry_run=True)
    assert code == 0
    shared = [e for e in events if "share PublicIP" in e.message]
    assert [e.message for e in shared] == [f"2 leases share PublicIP {VAGRANT}: 172.30.5.0/24, 172.30.9.0/24"]
    assert shared[0].status == "warn" and "flanneld.iface" in shared[0].detail and "-public-ip" in shared[0].detail


def test_a_dual_stack_lease_key_is_read_not_a_crash(etcd: lab.Etcd, tmp_path: Path) -> None:
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.5.0-24&fc00:0:0:5::-64", lease_value("192.168.56.12"))
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"], dry_run=True)
    assert code == 0
    summary = next(e for e in events if "lease(s) taken" in e.message)
    assert summary.message == "1 lease(s) taken, 254 of 255 node subnets left"
    assert summary.items == ("172.30.5.0/24 + fc00:0:0:5::/64 → 192.168.56.12",) and summary.detail == ""


def apply(tmp_path: Path, env: dict[str, str], text: str) -> str:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    result = run_wizard("apply", str(path), "--only", "etcd,flanneld", "--root", env["FW_TEST_ROOT"], "--yes", env=env)
    return f"{result.returncode}\n{result.stdout}{result.stderr}"


def test_flanneld_fails_when_this_nodes_lease_shares_its_public_ip(etcd: lab.Etcd, standin_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    """Two Vagrant VMs already hold leases with 10.0.2.15; this node's flanneld takes the address too."""
    unitfixtures.install(Path(standin_env["FW_TEST_ROOT"]), "centos7-flannel")
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.5.0-24", lease_value(VAGRANT))
    etcd.ctl("put", f"{prefix}/subnets/172.30.9.0-24", lease_value(VAGRANT))
    out = apply(tmp_path, {**standin_env, "FW_PUBLIC_IP": VAGRANT}, answers(etcd.endpoint, prefix))
    assert out.startswith("1\n"), out
    assert (f"this node's lease 172.30.5.0/24 has PublicIP {VAGRANT}, as other leases do: 2 leases share PublicIP "
            f"{VAGRANT}: 172.30.5.0/24, 172.30.9.0/24") in out
    assert "set flanneld.iface to the interface of the network the nodes share (flanneld's -iface)" in out


def test_the_fix_gives_this_node_its_own_address_and_lease(etcd: lab.Etcd, standin_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    """With -iface naming this node's address (an address is what flanneld's -iface may take), the lease
    it takes is its own: the check passes."""
    unitfixtures.install(Path(standin_env["FW_TEST_ROOT"]), "centos7-flannel")
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.5.0-24", lease_value(VAGRANT))
    out = apply(tmp_path, {**standin_env, "FW_PUBLIC_IP": VAGRANT},
                answers(etcd.endpoint, prefix, "  iface: 127.0.0.1\n"))
    assert out.startswith("0\n"), out
    assert "share PublicIP" not in out and "for 127.0.0.1 in etcd matches" in out


def test_this_nodes_dual_stack_lease_is_found_by_its_ipv4_part(etcd: lab.Etcd, standin_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    unitfixtures.install(Path(standin_env["FW_TEST_ROOT"]), "centos7-flannel")
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.7.0-24&fc00:0:0:7::-64", lease_value("127.0.0.1"))
    out = apply(tmp_path, standin_env, answers(etcd.endpoint, prefix))
    assert out.startswith("0\n"), out
    assert "lease 172.30.7.0/24 for 127.0.0.1 in etcd matches FLANNEL_SUBNET=172.30.7.1/24" in out


def test_validate_checks_iface_where_flanneld_is_installed(standin_env: dict[str, str], tmp_path: Path) -> None:
    """The stand-ins' PATH has flanneld: this machine is then the node, and /sys/class/net its interfaces."""
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\nflanneld:\n  iface: nosuch0\n")
    here = run_wizard("validate", str(path), env=standin_env)
    assert here.returncode == 2
    assert here.stderr.startswith(f"{path}:3:10: flanneld.iface: nosuch0 is not an interface of this node "
                                  "(flanneld is installed here, so validate checks; its interfaces: ")
    assert "Traceback" not in here.stderr
    elsewhere = run_wizard("validate", str(path), env={**standin_env, "PATH": "/usr/bin:/bin"})
    assert elsewhere.returncode == 0 and elsewhere.stdout == f"{path}: valid\n"
    path.write_text("version: 1\nflanneld:\n  iface: lo\n")
    assert run_wizard("validate", str(path), env=standin_env).returncode == 0


def test_validate_sees_the_interfaces_of_the_namespace_it_runs_in(netns: lab.Netns, standin_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    netns.ip("link", "add", "fwtest-eth1", "type", "bridge")
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\nflanneld:\n  iface: fwtest-eth1\n")
    assert run_wizard("validate", str(path), env=standin_env, netns=netns).returncode == 0
    assert run_wizard("validate", str(path), env=standin_env).returncode == 2  # not in the host's namespace


def test_a_key_that_is_not_a_lease_is_named_not_counted(etcd: lab.Etcd, tmp_path: Path) -> None:
    prefix = fresh_prefix()
    etcd.ctl("put", f"{prefix}/subnets/172.30.5.0-24", lease_value("192.168.56.12"))
    etcd.ctl("put", f"{prefix}/subnets/bogus", "{}")
    code, events = run_steps(answers(etcd.endpoint, prefix), tmp_path, ["etcd"], dry_run=True)
    assert code == 0
    assert any(e.message == "1 lease(s) taken, 254 of 255 node subnets left" for e in events)
    assert any(e.message == f"1 key(s) under {prefix}/subnets/ are not leases flanneld can read: bogus" for e in events)
