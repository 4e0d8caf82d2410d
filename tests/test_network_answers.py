"""The network answers as flannel reads them: the dual-stack keys, the ipsec backend and its PSK, the MTU's
meaning, each problem at its key and in flannel's words (or marked as the wizard's own finding)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from wizard import answers, flannel
from wizard.answers import AnswersInvalid


def problems(network: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    _, found = answers.check({"version": 1, "network": network})
    return [(loc, message) for loc, _kind, message in found]


def config(network: dict[str, Any]) -> dict[str, Any]:
    parsed, found = answers.check({"version": 1, "network": network})
    assert found == [] and parsed is not None
    return parsed.network.flannel_config()


def test_dual_stack_keys_are_written_only_when_asked_for() -> None:
    assert config({}) == {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}
    assert config({"enable_ipv6": True, "ipv6_cidr": "fc00::/48", "ipv6_subnet_len": 56,
                   "ipv6_subnet_min": "fc00:0:0:100::", "ipv6_subnet_max": "fc00:0:0:ff00::"}) == {
        "Network": "172.30.0.0/16", "SubnetLen": 24, "EnableIPv6": True, "IPv6Network": "fc00::/48",
        "IPv6SubnetLen": 56, "IPv6SubnetMin": "fc00:0:0:100::", "IPv6SubnetMax": "fc00:0:0:ff00::",
        "Backend": {"Type": "vxlan"}}


@pytest.mark.parametrize(("network", "loc", "text"), [
    # flannel's rules and texts, at the answers key they come from
    ({"enable_ipv6": True}, ("network", "ipv6_cidr"),
     "please define a correct IPv6Network parameter in the flannel config (flannel's rule)"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::/48", "ipv6_subnet_len": 127}, ("network", "ipv6_subnet_len"),
     "SubnetLen must be less than /127 (flannel's rule)"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::/125"}, ("network", "ipv6_cidr"),
     "IPv6Network is too small. Minimum useful network prefix is /124 (flannel's rule)"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::/48", "ipv6_subnet_min": "fc00:0:0:1::5"}, ("network", "ipv6_subnet_min"),
     "IPv6SubnetMin is not on a SubnetLen boundary: fc00:0:0:1::5 (flannel's rule)"),
    ({"enable_ipv4": False}, ("network", "enable_ipv4"), "none defined stack (flannel's rule)"),
    # flannel accepts these; the wizard says so and why
    ({"subnet_min": "172.30.9.0", "subnet_max": "172.30.5.0"}, ("network", "subnet_min"),
     "failed to acquire lease: out of subnets\" (the wizard's own check; flannel has no such rule)"),
    ({"enable_ipv4": False, "enable_ipv6": True, "ipv6_cidr": "fc00::/48"}, ("network", "enable_ipv4"),
     "etcd subnet manager"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::/48", "backend": {"type": "ipip"}}, ("network", "enable_ipv6"),
     "the ipip backend has no IPv6 path in flannel"),
    ({"ipv6_cidr": "fc00::/48"}, ("network", "ipv6_cidr"), "network.ipv6_cidr is set but enable_ipv6 is false"),
    # the answers' own shape
    ({"enable_ipv6": True, "ipv6_cidr": "10.0.0.0/16"}, ("network", "ipv6_cidr"), "is not an IPv6 CIDR"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::1/48"}, ("network", "ipv6_cidr"), "did you mean fc00::/48?"),
    ({"enable_ipv6": True, "ipv6_cidr": "fc00::/48", "ipv6_subnet_max": "10.0.0.1"}, ("network", "ipv6_subnet_max"),
     "is not an IPv6 address"),
])
def test_network_problems_say_whose_rule_it_is(network: dict[str, Any], loc: tuple[str, ...], text: str) -> None:
    found = problems(network)
    assert [where for where, _ in found] == [loc], found
    assert text in found[0][1]


def test_the_first_problem_is_flannels_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # SubnetLen 31 and a SubnetMin outside the network: flanneld logs the SubnetLen one and stops there
    found = problems({"subnet_len": 31, "subnet_min": "10.9.0.0"})
    assert found == [(("network", "subnet_len"), "SubnetLen must be less than /31 (flannel's rule) — adjust "
                                                  "network.subnet_len")]


def test_ipsec_needs_a_long_psk_in_flannels_words(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = problems({"backend": {"type": "ipsec"}})
    assert found[0][0] == ("network", "backend", "psk_env")
    assert found[0][1].startswith("config error, password is too short (flannel's rule: ipsec needs a PSK of at "
                                  "least 96 characters; no PSK is given)")
    monkeypatch.setenv("FW_TEST_PSK", "k" * 95)
    found = problems({"backend": {"type": "ipsec", "psk_env": "FW_TEST_PSK"}})
    assert "the PSK has 95 characters" in found[0][1] and "k" * 95 not in found[0][1]
    secret = tmp_path / "psk"
    secret.write_text("k" * 96 + "\n")
    secret.chmod(0o600)
    cfg = config({"backend": {"type": "ipsec", "psk_file": str(secret), "udp_encap": True,
                              "esp_proposal": "aes256gcm16-sha384-prfsha384-ecp384"}})
    assert cfg["Backend"] == {"Type": "ipsec", "UDPEncap": True, "ESPProposal": "aes256gcm16-sha384-prfsha384-ecp384",
                              "PSK": "k" * 96}
    assert flannel.redacted(cfg)["Backend"]["PSK"] == "********"
    assert flannel.backend_mtu(cfg["Backend"], 1500) == 1500 - 77 - 8


def test_an_esp_proposal_is_one_word() -> None:
    found = problems({"backend": {"type": "ipsec", "esp_proposal": "aes128 sha256"}})
    assert ("network", "backend", "esp_proposal") in [loc for loc, _ in found]


def test_wireguard_psk_is_checked_as_wgtypes_parses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_PSK", "not base64!")
    found = problems({"backend": {"type": "wireguard", "psk_env": "FW_TEST_PSK"}})
    assert found[0][1].startswith("could not parse psk: wgtypes: failed to parse base64-encoded key")
    monkeypatch.setenv("FW_TEST_PSK", base64.b64encode(b"x" * 16).decode())
    found = problems({"backend": {"type": "wireguard", "psk_env": "FW_TEST_PSK"}})
    assert found[0][1].startswith("could not parse psk: wgtypes: incorrect key size: 16")
    monkeypatch.setenv("FW_TEST_PSK", base64.b64encode(b"x" * 32).decode())
    assert problems({"backend": {"type": "wireguard", "psk_env": "FW_TEST_PSK"}}) == []


def test_a_file_with_ipsec_and_dual_stack_problems_names_their_lines() -> None:
    text = ("version: 1\nnetwork:\n  enable_ipv6: true\n  ipv6_cidr: fc00::/48\n  ipv6_subnet_len: 127\n"
            "  backend:\n    type: ipsec\n")
    with pytest.raises(AnswersInvalid) as caught:
        answers.parse(text, "a.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("a.yaml:5:20: SubnetLen must be less than /127 (flannel's rule)")
    assert lines[1].startswith("a.yaml:7:5: config error, password is too short")


def test_the_mtu_is_described_as_the_underlays() -> None:
    schema = answers.Answers.model_json_schema()["$defs"]
    assert "flannel.1 and FLANNEL_MTU get 50 less" in schema["Vxlan"]["properties"]["mtu"]["description"]
    assert "flannel-wg and FLANNEL_MTU get 80 less" in schema["Wireguard"]["properties"]["mtu"]["description"]
