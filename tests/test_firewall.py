"""The filter table as the mesh step reads it, from real rules: loaded with iptables-restore in a namespace
and read back with iptables-save, as the step reads a node's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import lab
from wizard.firewall import FilterTable, Packet, Verdict, parse_filter

# docker 1.13+ on a node: policy DROP, and only its own bridge's traffic accepted
DOCKER = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
"""
# what flanneld -iptables-forward-rules adds on top
FLANNEL = DOCKER.replace(":DOCKER - [0:0]", ":DOCKER - [0:0]\n:FLANNEL-FWD - [0:0]").replace(
    "-A DOCKER-USER -j RETURN",
    "-A DOCKER-USER -j RETURN\n-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD\n"
    "-A FLANNEL-FWD -s 172.30.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n"
    "-A FLANNEL-FWD -d 172.30.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT")
BLOCKED = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:IN_public - [0:0]
-A INPUT -j IN_public
-A IN_public -p udp -m udp --dport 8000:9000 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""


@pytest.fixture
def ns() -> Iterator[lab.Netns]:
    made = lab.Netns()
    try:
        yield made
    finally:
        made.delete()


def load(ns: lab.Netns, rules: str) -> FilterTable:
    ns.exec("iptables-restore", input=rules)
    return parse_filter(ns.exec("iptables-save", "-t", "filter").stdout)


INBOUND = Packet("172.30.2.2", "172.30.1.2", "flannel.1", "docker0")  # another node's pod to one here
OUTBOUND = Packet("172.30.1.2", "172.30.2.2", "docker0", "flannel.1")


def test_docker_policy_drop_drops_pod_traffic_from_other_nodes(ns: lab.Netns) -> None:
    table = load(ns, DOCKER)
    assert table.verdict("FORWARD", INBOUND) == Verdict("DROP", "policy", "FORWARD")
    # docker's own rule lets its pods out (-i docker0 ! -o docker0): only the way in is dropped
    assert table.verdict("FORWARD", OUTBOUND).action == "ACCEPT"


def test_flanneld_forward_rules_accept_it_through_their_chain(ns: lab.Netns) -> None:
    table = load(ns, FLANNEL)
    found = table.verdict("FORWARD", INBOUND)
    assert found.action == "ACCEPT" and found.chain == "FLANNEL-FWD"
    other = Packet("10.244.2.2", "10.244.1.2", "flannel.1", "docker0")
    assert table.verdict("FORWARD", other).action == "DROP"


def test_a_port_range_rejected_in_a_jumped_chain_is_found_and_an_earlier_accept_wins(ns: lab.Netns) -> None:
    table = load(ns, BLOCKED)
    udp = Packet("192.168.64.12", "192.168.64.11", None, None, "udp", 8472)
    found = table.verdict("INPUT", udp)
    assert found.action == "REJECT" and found.rule.startswith("-A IN_public -p udp")
    assert table.verdict("INPUT", Packet("192.168.64.12", "192.168.64.11", None, None, "udp", 51820)).action == "ACCEPT"
    accepted = load(ns, BLOCKED.replace("-A INPUT -j IN_public",
                                        "-A INPUT -s 192.168.64.0/24 -p udp -m udp --dport 8472 -j ACCEPT\n"
                                        "-A INPUT -j IN_public"))
    assert accepted.verdict("INPUT", udp).action == "ACCEPT"


def test_a_mark_match_is_not_taken_for_an_accept_and_return_ends_a_chain(ns: lab.Netns) -> None:
    table = load(ns, DOCKER.replace("-A DOCKER-USER -j RETURN",
                                    "-A DOCKER-USER -j RETURN\n-A DOCKER-USER -j ACCEPT\n"
                                    "-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT"))
    assert table.verdict("FORWARD", INBOUND) == Verdict("DROP", "policy", "FORWARD")
