"""flannel's own cases, as data: pkg/subnet/config_test.go (what a config means once read), the branches of
CheckNetworkConfig in their order (which text comes first), and pkg/subnet/subnet_test.go's lease keys.

The cases are flannel's (upstream flannel-io/flannel, read 2026-08); the test code is ours.
"""

from __future__ import annotations

from typing import Any

import pytest

from wizard import flannel

# ---------------------------------------------------------------- config_test.go: what a config means

# (config JSON as flannel's tests write it, expected (network, subnet_len, first, last) per family, or None)
MEANING: list[tuple[str, dict[str, Any], tuple[str, int, str, str] | None, tuple[str, int, str, str] | None]] = [
    # TestConfigDefaults: keys are read case-insensitively ("network"), a /16 gives /24s from the second one
    ("defaults", {"network": "10.3.0.0/16"}, ("10.3.0.0/16", 24, "10.3.1.0", "10.3.255.0"), None),
    # TestIPv6ConfigDefaults: IPv6 only, a /48 gives /64s from the second one to the last
    ("ipv6 defaults", {"enableIPv6": True, "ipv6Network": "fc00::/48", "enableIPv4": False},
     None, ("fc00::/48", 64, "fc00:0:0:1::", "fc00:0:0:ffff::")),
    # TestConfigOverrides: SubnetMin/Max/Len kept as given
    ("overrides", {"Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28},
     ("10.3.0.0/16", 28, "10.3.5.0", "10.3.8.0"), None),
    # TestIPv6ConfigOverrides
    ("ipv6 overrides", {"EnableIPv6": True, "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fc00:0:0:1::",
                        "IPv6SubnetMax": "fc00:0:0:f::", "IPv6SubnetLen": 124, "enableIPv4": False},
     None, ("fc00::/48", 124, "fc00:0:0:1::", "fc00:0:0:f::")),
    # FuzzParseConfig's seeds that CheckNetworkConfig accepts
    ("a /8", {"Network": "10.0.0.0/8", "SubnetLen": 24, "Backend": {"Type": "vxlan"}},
     ("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"), None),
    ("dual-stack", {"Network": "10.0.0.0/8", "EnableIPv6": True, "IPv6Network": "fc00::/48"},
     ("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"), ("fc00::/48", 64, "fc00:0:0:1::", "fc00:0:0:ffff::")),
    # the defaulting branches of SubnetLen: <= /22 -> /24, else prefix + 2; IPv6 <= /62 -> /64, else + 2
    ("a /23 splits in four", {"Network": "10.0.0.0/23"}, ("10.0.0.0/23", 25, "10.0.0.128", "10.0.1.128"), None),
    ("a /28 is the smallest", {"Network": "10.0.0.0/28"}, ("10.0.0.0/28", 30, "10.0.0.4", "10.0.0.12"), None),
    ("a /120 splits in four", {"EnableIPv4": False, "EnableIPv6": True, "IPv6Network": "fc00::/120"},
     None, ("fc00::/120", 122, "fc00::40", "fc00::c0")),
    # host bits in Network are dropped (Go's ParseCIDR keeps the network); 0.0.0.0 means "unset"
    ("host bits", {"Network": "10.3.5.7/16", "SubnetMin": "0.0.0.0"}, ("10.3.0.0/16", 24, "10.3.1.0", "10.3.255.0"),
     None),
]


@pytest.mark.parametrize(("cfg", "v4", "v6"), [c[1:] for c in MEANING], ids=[c[0] for c in MEANING])
def test_what_a_config_means_to_flannel(cfg: dict[str, Any], v4: tuple | None, v6: tuple | None) -> None:
    checked = flannel.check_config(cfg)
    for got, want in ((checked.v4, v4), (checked.v6, v6)):
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert (str(got.network), got.subnet_len, str(got.first), str(got.last)) == want


# ---------------------------------------------------------------- CheckNetworkConfig: texts and order

V4 = {"Network": "10.0.0.0/16"}
V6 = {"EnableIPv6": True, "IPv6Network": "fc00::/48"}

# (config, flannel key, flannel's text): each is the *first* error flanneld logs for that config
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("no Network", {}, "Network", "please define a correct Network parameter in the flannel config"),
    ("0.0.0.0/0 is empty", {"Network": "0.0.0.0/0"}, "Network",
     "please define a correct Network parameter in the flannel config"),
    ("SubnetLen 31", {**V4, "SubnetLen": 31}, "SubnetLen", "SubnetLen must be less than /31"),
    ("SubnetLen 17 of a /16", {**V4, "SubnetLen": 17}, "SubnetLen",
     "network must be able to accommodate at least four subnets"),
    ("a /29", {"Network": "10.0.0.0/29"}, "Network", "network is too small. Minimum useful network prefix is /28"),
    ("SubnetMin outside", {**V4, "SubnetMin": "10.1.0.0"}, "SubnetMin", "SubnetMin is not in the range of the Network"),
    ("SubnetMax outside", {**V4, "SubnetMax": "10.1.0.0"}, "SubnetMax", "SubnetMax is not in the range of the Network"),
    ("SubnetMin misaligned", {**V4, "SubnetMin": "10.0.3.7"}, "SubnetMin",
     "SubnetMin is not on a SubnetLen boundary: 10.0.3.7"),
    ("SubnetMax misaligned", {**V4, "SubnetMax": "10.0.3.7"}, "SubnetMax",
     "SubnetMax is not on a SubnetLen boundary: 10.0.3.7"),
    # order: both bounds are checked for the range before either for its alignment
    ("Min misaligned, Max outside", {**V4, "SubnetMin": "10.0.3.7", "SubnetMax": "10.9.0.0"}, "SubnetMax",
     "SubnetMax is not in the range of the Network"),
    # order: SubnetLen before the bounds
    ("SubnetLen and SubnetMin", {**V4, "SubnetLen": 31, "SubnetMin": "10.1.0.0"}, "SubnetLen",
     "SubnetLen must be less than /31"),
    # order: IPv4 before IPv6
    ("IPv4 before IPv6", {"Network": "10.0.0.0/29", "EnableIPv6": True}, "Network",
     "network is too small. Minimum useful network prefix is /28"),
    ("no IPv6Network", {**V4, "EnableIPv6": True}, "IPv6Network",
     "please define a correct IPv6Network parameter in the flannel config"),
    ("IPv6SubnetLen 127", {**V4, **V6, "IPv6SubnetLen": 127}, "IPv6SubnetLen", "SubnetLen must be less than /127"),
    ("IPv6SubnetLen 49 of a /48", {**V4, **V6, "IPv6SubnetLen": 49}, "IPv6SubnetLen",
     "network must be able to accommodate at least four subnets"),
    ("a /125", {**V4, "EnableIPv6": True, "IPv6Network": "fc00::/125"}, "IPv6Network",
     "IPv6Network is too small. Minimum useful network prefix is /124"),
    ("IPv6SubnetMin outside", {**V4, **V6, "IPv6SubnetMin": "fc01::"}, "IPv6SubnetMin",
     "IPv6SubnetMin is not in the range of the IPv6Network"),
    ("IPv6SubnetMax outside", {**V4, **V6, "IPv6SubnetMax": "fc01::"}, "IPv6SubnetMax",
     "IPv6SubnetMax is not in the range of the IPv6Network"),
    ("IPv6SubnetMin misaligned", {**V4, **V6, "IPv6SubnetMin": "fc00:0:0:1::5"}, "IPv6SubnetMin",
     "IPv6SubnetMin is not on a SubnetLen boundary: fc00:0:0:1::5"),
    ("IPv6SubnetMax misaligned", {**V4, **V6, "IPv6SubnetMax": "fc00:0:0:1::5"}, "IPv6SubnetMax",
     "IPv6SubnetMax is not on a SubnetLen boundary: fc00:0:0:1::5"),
    # main.go: GetIPFamily after CheckNetworkConfig, which has nothing to check with both families off
    ("neither family", {"EnableIPv4": False}, "EnableIPv4", "none defined stack"),
    # ParseConfig comes first: pkg/ip's texts for values that do not parse, in the document's order
    ("Network not a CIDR", {"Network": "10.0.0.0", "SubnetLen": 31}, "Network", "invalid CIDR address: 10.0.0.0"),
    ("Network IPv6", {"Network": "fc00::/48"}, "Network", "invalid IPv4 CIDR format"),
    ("SubnetMin not an address", {**V4, "SubnetMin": "10.0.1"}, "SubnetMin", "invalid IP address format"),
    ("SubnetMin IPv6", {**V4, "SubnetMin": "fc00::"}, "SubnetMin", "invalid IPv4 address format"),
    ("IPv6SubnetMin not an address", {**V4, **V6, "IPv6SubnetMin": "fc00:::1"}, "IPv6SubnetMin",
     "invalid IP address format"),
    ("document order", {"SubnetMin": "x", "Network": "y"}, "SubnetMin", "invalid IP address format"),
    ("SubnetLen a string", {**V4, "SubnetLen": "24"}, "SubnetLen",
     "json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint"),
    # a type error is remembered, an address error stops the decoding at once and wins
    ("address error wins", {"SubnetLen": -1, "Network": "nope"}, "Network", "invalid CIDR address: nope"),
]


@pytest.mark.parametrize(("cfg", "field", "text"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_flannels_first_error_and_its_words(cfg: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(flannel.ConfigProblem) as caught:
        flannel.check_config(cfg)
    assert (caught.value.field, caught.value.message, caught.value.ours) == (field, text, False)


def test_subnet_min_after_max_is_accepted_by_flannel_and_found_by_the_wizard() -> None:
    """flannel has no rule for SubnetMin > SubnetMax: CheckNetworkConfig passes, and allocateSubnet walks
    an empty range ("out of subnets"). The wizard says so as its own finding, not as flannel's text."""
    cfg = {**V4, "SubnetMin": "10.0.9.0", "SubnetMax": "10.0.5.0"}
    checked = flannel.check_config(cfg)  # no error: flannel's checks pass
    assert checked.v4 is not None and checked.v4.count == 0
    found = flannel.own_findings(cfg, checked)
    assert [(p.field, p.ours) for p in found] == [("SubnetMin", True)]
    assert "out of subnets" in found[0].message and "flannel accepts this" in found[0].message


@pytest.mark.parametrize(("cfg", "field", "words"), [
    ({"EnableIPv4": False, **V6, "Backend": {"Type": "vxlan"}}, "EnableIPv4", "etcd subnet manager"),
    ({**V4, **V6, "Backend": {"Type": "ipsec"}}, "EnableIPv6", "the ipsec backend has no IPv6 path"),
    ({**V4, **V6, "Backend": {"Type": "udp"}}, "EnableIPv6", "the udp backend has no IPv6 path"),
    ({**V4, "EnableIPv6": True, "IPv6Network": "10.9.0.0/16", "Backend": {"Type": "vxlan"}}, "IPv6Network",
     "is an IPv4 CIDR"),
])
def test_what_flannel_accepts_but_cannot_work(cfg: dict[str, Any], field: str, words: str) -> None:
    found = flannel.own_findings(cfg, flannel.check_config(cfg))
    assert [p.field for p in found] == [field] and words in found[0].message and found[0].ours


def test_a_dual_stack_vxlan_config_has_no_findings() -> None:
    cfg = {**V4, **V6, "Backend": {"Type": "vxlan"}}
    assert flannel.own_findings(cfg, flannel.check_config(cfg)) == []


def test_backend_type_as_parse_config_reads_it() -> None:
    assert flannel.check_config(V4).backend_type == "udp"  # no Backend: udp, whatever the docs say
    assert flannel.check_config({**V4, "Backend": {"type": "vxlan"}}).backend_type == "vxlan"
    assert flannel.check_config({**V4, "Backend": {}}).backend_type == ""  # then "unknown backend type: "


# ---------------------------------------------------------------- subnet_test.go: lease keys


@pytest.mark.parametrize(("key", "v4", "v6"), [
    ("10.12.13.0-24", "10.12.13.0/24", None),  # TestSubnetNodev4
    ("10.12.13.0-24&fd00:12:13::-56", "10.12.13.0/24", "fd00:12:13::/56"),  # TestSubnetNodev6
    ("/kube-centos/network/subnets/172.30.5.0-24&fc00:0:0:5::-64", "172.30.5.0/24", "fc00:0:0:5::/64"),
])
def test_lease_keys_parse_and_build_back(key: str, v4: str, v6: str | None) -> None:
    lease = flannel.parse_lease_key(key)
    assert lease is not None
    assert (str(lease.subnet), str(lease.ipv6_subnet) if lease.ipv6_subnet else None) == (v4, v6)
    assert lease.key == key.rsplit("/", 1)[-1]  # MakeSubnetKey gives the same key back


@pytest.mark.parametrize("key", [
    # TestSubnetNodeInvalid
    "10", "10.12.13.0", "10.12.13-24", "10.12.13.300-24", "10.12.13.0-24hi", "&2001::-56",
    "10.12.13.0-24&:12:13:-56", "10.12.13.0-24&20011::-56", "10.12.13.0-24&2001-56", "10.12.13.0-24&2001::",
    "10.12.13.0-24&2001::-56hi",
    # FuzzParseSubnetKey's seeds: a /32 is past ParseUint(.., 5), and garbage
    "255.255.255.255-32", "garbage", "",
])
def test_what_flannel_does_not_take_for_a_lease_key(key: str) -> None:
    assert flannel.parse_lease_key(key) is None


def test_an_ipv6_only_lease_key_has_no_ipv4_subnet() -> None:
    # with EnableIPv4 false the etcd manager's IPv4 part is the empty 0.0.0.0-0 (IP4Net{}.Empty())
    lease = flannel.parse_lease_key("0.0.0.0-0&fc00:0:0:5::-64")
    assert lease is not None and lease.subnet is None and str(lease.ipv6_subnet) == "fc00:0:0:5::/64"
    assert lease.key == "0.0.0.0-0&fc00:0:0:5::-64"
