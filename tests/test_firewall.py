"""The filter table as the mesh step reads it, from real rules: loaded with iptables-restore in a namespace
and read back with iptables-save, as the step reads a node's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import lab
from wizard.firewall import FilterTable, parse_filter

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


def test_docker_policy_drop_drops_the_flannel_network(ns: lab.Netns) -> None:
    table = load(ns, DOCKER)
    assert table.policy("FORWARD") == "DROP"
    assert not table.accepts_network("FORWARD", "172.30.0.0/16")


def test_flanneld_forward_rules_accept_it(ns: lab.Netns) -> None:
    table = load(ns, FLANNEL)
    assert table.accepts_network("FORWARD", "172.30.0.0/16")
    assert not table.accepts_network("FORWARD", "10.244.0.0/16")


def test_a_port_range_rejected_in_a_jumped_chain_is_found(ns: lab.Netns) -> None:
    table = load(ns, BLOCKED)
    assert table.drops_udp("INPUT", 8472).startswith("-A IN_public -p udp")
    assert table.drops_udp("INPUT", 51820) == ""
    assert table.policy("FORWARD") == "ACCEPT"
