"""flannel's own rules and mk-docker-opts.sh's exact output (facts.md)."""

from __future__ import annotations

import pytest

from wizard import flannel
from wizard.errors import WizardError

FACTS_ENV = {"FLANNEL_SUBNET": "10.1.74.1/24", "FLANNEL_MTU": "1472", "FLANNEL_IPMASQ": "false"}


def test_mk_docker_opts_matches_the_script_byte_for_byte() -> None:
    assert flannel.mk_docker_opts(FACTS_ENV) == (
        'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\n'
        'DOCKER_OPT_IPMASQ="--ip-masq=true"\n'
        'DOCKER_OPT_MTU="--mtu=1472"\n'
        'DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'
    )


def test_mk_docker_opts_options() -> None:
    env = {**FACTS_ENV, "FLANNEL_IPMASQ": "true"}
    assert flannel.mk_docker_opts(env, combined=False) == (
        'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1472"\n'
    )
    assert flannel.mk_docker_opts(env, individual=False, combined_key="DOCKER_NETWORK_OPTIONS", ip_masq=False) == (
        'DOCKER_NETWORK_OPTIONS=" --bip=10.1.74.1/24 --mtu=1472"\n'
    )
    # neither -i nor -c means both, as in the script; an inherited $KEY is prepended with a space
    assert flannel.mk_docker_opts(FACTS_ENV, False, False, inherited="-H fd://").endswith(
        'DOCKER_OPTS="-H fd://  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'
    )
    no_masq = {"FLANNEL_SUBNET": "10.1.74.1/24", "FLANNEL_MTU": "1472"}
    assert "IPMASQ" not in flannel.mk_docker_opts(no_masq)


def test_mk_docker_opts_rejects_a_bad_ipmasq_like_the_script() -> None:
    with pytest.raises(WizardError, match="Invalid value of FLANNEL_IPMASQ: yes"):
        flannel.mk_docker_opts({**FACTS_ENV, "FLANNEL_IPMASQ": "yes"})


@pytest.mark.parametrize(
    ("cfg", "field", "text"),
    [
        ({}, "Network", "please define a correct Network parameter in the flannel config"),
        ({"Network": "10.0.0.0/16", "SubnetLen": 31}, "SubnetLen", "SubnetLen must be less than /31"),
        ({"Network": "10.0.0.0/16", "SubnetLen": 17}, "SubnetLen", "network must be able to accommodate at least four subnets"),
        ({"Network": "10.0.0.0/29"}, "Network", "network is too small. Minimum useful network prefix is /28"),
        ({"Network": "10.0.0.0/16", "SubnetMin": "10.1.0.0"}, "SubnetMin", "SubnetMin is not in the range of the Network"),
        ({"Network": "10.0.0.0/16", "SubnetMax": "10.1.0.0"}, "SubnetMax", "SubnetMax is not in the range of the Network"),
        ({"Network": "10.0.0.0/16", "SubnetLen": 24, "SubnetMin": "10.0.3.7"}, "SubnetMin", "SubnetMin is not on a SubnetLen boundary: 10.0.3.7"),
    ],
)
def test_flannel_config_rules_use_flannels_words(cfg: dict, field: str, text: str) -> None:
    with pytest.raises(flannel.ConfigProblem) as caught:
        flannel.subnet_range(cfg)
    assert (caught.value.field, caught.value.message) == (field, text)


def test_subnet_ranges() -> None:
    rng = flannel.subnet_range({"Network": "172.30.0.0/16", "SubnetLen": 24})
    assert (str(rng.first), str(rng.last), rng.count) == ("172.30.1.0", "172.30.255.0", 255)
    assert flannel.subnet_range({"Network": "10.0.0.0/22"}).subnet_len == 24
    assert flannel.subnet_range({"Network": "10.0.0.0/24"}).subnet_len == 26
    small = flannel.subnet_range({"Network": "10.0.0.0/28"})
    assert (small.subnet_len, small.count) == (30, 3)


def test_configs_compare_as_flannel_reads_them() -> None:
    ours = {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}
    spelled = {"Backend": {"VNI": 1, "Type": "vxlan", "Port": 0}, "Network": "172.30.0.0/16"}
    assert flannel.same_config(ours, spelled)
    assert not flannel.same_config(ours, {**ours, "Backend": {"Type": "vxlan", "VNI": 2}})
    # no Backend means udp in flannel's code, not vxlan
    assert not flannel.same_config(ours, {"Network": "172.30.0.0/16", "SubnetLen": 24})


@pytest.mark.parametrize(("kind", "mtu"), [("vxlan", 1450), ("udp", 1472), ("ipip", 1480), ("wireguard", 1420), ("host-gw", 1500)])
def test_backend_mtu(kind: str, mtu: int) -> None:
    assert flannel.backend_mtu({"Type": kind}, 1500) == mtu


def test_lease_names() -> None:
    assert flannel.lease_key("172.30.46.0/24") == "172.30.46.0-24"
    assert flannel.lease_subnet("/kube-centos/network/subnets/172.30.46.0-24") == "172.30.46.0/24"
