"""flanneld's check with IPv6 on: subnet.env must carry FLANNEL_IPV6_NETWORK (the config's IPv6Network)
and FLANNEL_IPV6_SUBNET (this node's lease's IPv6 part) — against a real etcd and real files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from wizard.answers import parse
from wizard.node import Node
from wizard.steps import Context, flanneld

V4 = "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.1.1/24\n"
V6 = "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\n"
TAIL = "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
LEASE = json.dumps({"PublicIP": "192.168.56.11", "PublicIPv6": "fd00::11", "BackendType": "vxlan",
                    "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}})


@pytest.fixture
def prefix(etcd: lab.Etcd) -> Iterator[str]:
    name = f"/fwtest-{uuid.uuid4().hex[:8]}/network"
    yield name
    etcd.ctl("del", "--prefix", name)


def checks(etcd: lab.Etcd, prefix: str, tmp_path: Path, subnet_env: str, lease_key: str) -> list[tuple[str, str, str]]:
    etcd.ctl("put", f"{prefix}/subnets/{lease_key}", LEASE)
    (tmp_path / "run/flannel").mkdir(parents=True, exist_ok=True)
    (tmp_path / "run/flannel/subnet.env").write_text(subnet_env)
    a = parse(f'version: 1\netcd:\n  endpoints: ["{etcd.endpoint}"]\n  prefix: {prefix}\n'
              "network:\n  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n")
    ctx = Context(a, Node(str(tmp_path)))
    try:
        return [(c.status, c.message, c.detail) for c in flanneld.verify(ctx, None)]  # type: ignore[arg-type]
    finally:
        ctx.close()


DUAL = "172.30.1.0-24&fc00:0:0:1::-64"


def test_a_dual_stack_subnet_env_and_lease_pass(etcd: lab.Etcd, prefix: str, tmp_path: Path) -> None:
    (found,) = checks(etcd, prefix, tmp_path, V4 + V6 + TAIL, DUAL)
    assert found[:2] == ("ok", "lease 172.30.1.0/24 + fc00:0:0:1::/64 for 192.168.56.11 in etcd matches "
                               "FLANNEL_SUBNET=172.30.1.1/24 and FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64 (MTU 1450)")


def test_a_subnet_env_without_ipv6_fails_with_the_fix(etcd: lab.Etcd, prefix: str, tmp_path: Path) -> None:
    (found,) = checks(etcd, prefix, tmp_path, V4 + TAIL, "172.30.1.0-24")
    assert found[:2] == ("failed", "/run/flannel/subnet.env has no FLANNEL_IPV6_NETWORK, though the flannel config "
                                   "enables IPv6 (IPv6Network fc00::/48): flanneld runs without IPv6")
    assert found[2].startswith("restart flanneld so it reads the config with EnableIPv6")


def test_another_ipv6_network_or_no_ipv6_subnet_fails(etcd: lab.Etcd, prefix: str, tmp_path: Path) -> None:
    other = V4 + "FLANNEL_IPV6_NETWORK=fd00:1::/48\nFLANNEL_IPV6_SUBNET=fd00:1:0:1::1/64\n" + TAIL
    (found,) = checks(etcd, prefix, tmp_path, other, DUAL)
    assert found[:2] == ("failed", "/run/flannel/subnet.env has FLANNEL_IPV6_NETWORK=fd00:1::/48, not the config's "
                                   "IPv6Network fc00::/48")
    (found,) = checks(etcd, prefix, tmp_path, V4 + "FLANNEL_IPV6_NETWORK=fc00::/48\n" + TAIL, DUAL)
    assert found[:2] == ("failed", "/run/flannel/subnet.env has FLANNEL_IPV6_NETWORK=fc00::/48 but no "
                                   "FLANNEL_IPV6_SUBNET: this node has no IPv6 lease")


def test_a_lease_whose_ipv6_part_differs_fails(etcd: lab.Etcd, prefix: str, tmp_path: Path) -> None:
    (found,) = checks(etcd, prefix, tmp_path, V4 + V6 + TAIL, "172.30.1.0-24&fc00:0:0:7::-64")
    assert found[:2] == ("failed", f"this node's lease {prefix}/subnets/172.30.1.0-24&fc00:0:0:7::-64 in etcd has "
                                   "IPv6 part fc00:0:0:7::/64, but /run/flannel/subnet.env has "
                                   "FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64")
    assert found[2].startswith("the subnet file is stale or the lease was taken without IPv6; restart flanneld")
