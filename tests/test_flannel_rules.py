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
    # more cases, and their order, in tests/test_flannel_config_cases.py
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
    # Go's encoding/json matches keys case-insensitively, the backend's options too
    assert flannel.same_config(ours, {"network": "172.30.0.0/16", "backend": {"type": "vxlan", "vni": 1}})
    assert not flannel.same_config(ours, {"network": "172.30.0.0/16", "backend": {"type": "vxlan", "vni": 2}})
    # dual-stack: defaults filled in for the IPv6 half as for the IPv4 one; EnableIPv6 false spelled out is default
    dual = {**ours, "EnableIPv6": True, "IPv6Network": "fc00::/48"}
    assert flannel.same_config(dual, {**dual, "IPv6SubnetLen": 64, "IPv6SubnetMin": "fc00:0:0:1::"})
    assert not flannel.same_config(dual, {**dual, "IPv6SubnetLen": 56})
    assert flannel.same_config(ours, {**ours, "EnableIPv6": False, "EnableIPv4": True})


@pytest.mark.parametrize(("backend", "mtu"), [
    ({"Type": "vxlan"}, 1450), ({"Type": "udp"}, 1472), ({"Type": "ipip"}, 1480), ({"Type": "wireguard"}, 1420),
    ({"Type": "host-gw"}, 1500), ({"Type": "ipsec"}, 1423), ({"Type": "ipsec", "UDPEncap": True}, 1415),
    # Backend.MTU is the underlay's: vxlan and wireguard take their overhead off it too (device.go)
    ({"Type": "vxlan", "MTU": 9000}, 8950), ({"Type": "wireguard", "MTU": 1400}, 1320),
    # other backends have no MTU option: the interface's MTU decides
    ({"Type": "ipip", "MTU": 9000}, 1480), ({"Type": "ipsec", "MTU": 9000}, 1423),
])
def test_backend_mtu_is_flannels(backend: dict, mtu: int) -> None:
    assert flannel.backend_mtu(backend, 1500) == mtu


def test_udp_ports_of_each_backend() -> None:
    def ports(backend: dict, v4: bool = True, v6: bool = False) -> list[tuple[int, tuple[str, ...]]]:
        return [(p.port, p.devices) for p in flannel.udp_ports(backend, v4, v6)]

    assert ports({"Type": "vxlan", "VNI": 4}) == [(8472, ("flannel.4",))]
    assert ports({"Type": "vxlan", "Port": 4789}, v6=True) == [(4789, ("flannel.1", "flannel-v6.1"))]
    assert ports({"Type": "udp"}) == [(8285, ("flannel0",))]
    assert ports({"Type": "host-gw"}) == []
    # wireguard's separate mode has a second device, on ListenPortV6, when IPv6 is on
    assert ports({"Type": "wireguard"}) == [(51820, ("flannel-wg",))]
    assert ports({"Type": "wireguard", "ListenPortV6": 52000}, v6=True) == [
        (51820, ("flannel-wg",)), (52000, ("flannel-wg-v6",))]
    assert ports({"Type": "wireguard", "Mode": "auto"}, v6=True) == [(51820, ("flannel-wg",))]
    # ipsec: strongSwan's charon, started by flanneld, on IKE's ports
    assert [(p.port, p.flannels) for p in flannel.udp_ports({"Type": "ipsec"})] == [(500, False), (4500, False)]


def test_lease_names() -> None:
    assert flannel.lease_key("172.30.46.0/24") == "172.30.46.0-24"
    assert flannel.lease_key("172.30.5.0/24", "fc00:0:0:5::/64") == "172.30.5.0-24&fc00:0:0:5::-64"
    assert flannel.lease_subnet("/kube-centos/network/subnets/172.30.46.0-24") == "172.30.46.0/24"
    assert flannel.lease_subnet("/p/subnets/172.30.5.0-24&fc00:0:0:5::-64") == "172.30.5.0/24 + fc00:0:0:5::/64"


def test_lease_index_finds_ipv4_and_ipv6_addresses_in_dual_stack_leases() -> None:
    leases = [
        ("/p/subnets/172.30.5.0-24&fc00:0:0:5::-64", '{"PublicIP":"192.168.56.11","PublicIPv6":"fd00::11"}'),
        ("/p/subnets/172.30.38.0-24", '{"PublicIP":"192.168.56.12","PublicIPv6":null}'),
        ("/p/subnets/not-a-lease", "{}"),
        ("/p/subnets/172.30.9.0-24", "not json"),
    ]
    index = flannel.LeaseIndex(leases)
    assert len(index) == 4
    assert index.holding("172.30.5.7") == "node subnet 172.30.5.0/24 (192.168.56.11)"
    assert index.holding("fc00:0:0:5::2") == "node subnet fc00:0:0:5::/64 (fd00::11)"
    assert index.holding("172.30.38.2") == "node subnet 172.30.38.0/24 (192.168.56.12)"
    assert index.holding("172.30.9.1") == "node subnet 172.30.9.0/24 (?)"
    assert index.holding("172.30.6.1") is None and index.holding("fc00:0:0:6::1") is None
    assert index.holding("not an address") is None


def test_lease_index_is_one_lookup_per_address_not_one_per_lease() -> None:
    """10 000 leases and 10 000 addresses: endpoints x leases would be 10^8 comparisons; the index makes
    it a dictionary look-up per address. Counted, not timed: the index's table is consulted once per address."""
    leases = [(f"/p/subnets/10.{i // 256}.{i % 256}.0-24", '{"PublicIP":"192.168.0.1"}') for i in range(10_000)]
    index = flannel.LeaseIndex(leases)
    assert len(index) == 10_000
    lookups = 0
    table = next(iter(index._tables.values()))

    class Counting(dict):
        def get(self, *args: object) -> object:  # type: ignore[override]
            nonlocal lookups
            lookups += 1
            return super().get(*args)

    index._tables = {k: Counting(v) for k, v in index._tables.items()}
    found = [index.holding(f"10.{i // 256}.{i % 256}.9") for i in range(10_000)]
    assert all(found) and lookups == 10_000 and len(table) == 10_000


def test_subnet_env_is_written_in_flannels_order() -> None:
    checked = flannel.check_config({"Network": "172.30.0.0/16", "EnableIPv6": True, "IPv6Network": "fc00::/48"})
    lease = flannel.first_free_lease(checked, ["/p/subnets/172.30.1.0-24&fc00:0:0:1::-64"])
    assert lease is not None and lease.key == "172.30.2.0-24&fc00:0:0:2::-64"
    text = flannel.subnet_env(checked, lease, 1450, ip_masq=True)
    assert text == ("FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.2.1/24\n"
                    "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:2::1/64\n"
                    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    assert flannel.env_lease(flannel.parse_env(text)) == lease  # and read back to the same lease
    single = flannel.check_config({"Network": "172.30.0.0/16"})
    assert flannel.subnet_env(single, flannel.Lease(lease.subnet), 1450, False).splitlines()[2] == "FLANNEL_MTU=1450"


def test_first_free_lease_steps_over_taken_ones_and_runs_out_like_flannel() -> None:
    checked = flannel.check_config({"Network": "10.0.0.0/28"})  # /30s: 10.0.0.4, .8, .12
    taken = ["/p/subnets/10.0.0.4-30", "/p/subnets/10.0.0.8-30"]
    assert str(flannel.first_free_lease(checked, taken)) == "10.0.0.12/30"
    assert flannel.first_free_lease(checked, [*taken, "/p/subnets/10.0.0.12-30"]) is None


def test_psk_is_redacted_whatever_its_case() -> None:
    cfg = {"Network": "10.0.0.0/16", "Backend": {"Type": "ipsec", "psk": "x" * 96, "UDPEncap": True}}
    assert flannel.redacted(cfg)["Backend"] == {"Type": "ipsec", "psk": "********", "UDPEncap": True}
    assert "x" * 96 in flannel.to_json(cfg)  # the real one is what etcd gets
