"""kube-proxy's iptables mode for real, beyond one family and random picks: ClientIP session affinity
(`-m recent` rules loaded with iptables-restore) pins this node's requests to one pod while the trace
still lists each endpoint once with its share; and a dual-stack service (iptables and ip6tables) is
traced in both families and answers through both cluster IPs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.podlab import PODS, PODS6, Cluster, make_cluster


@pytest.fixture
def sticky() -> Iterator[Cluster]:
    yield from make_cluster(rules=True, affinity=10800)


@pytest.fixture
def dual() -> Iterator[Cluster]:
    yield from make_cluster(rules=True, dual=True)


def test_affinity_pins_the_client_and_each_endpoint_is_listed_once(sticky: Cluster) -> None:
    result = sticky.walk(tries=12)
    status, message, tree = result["rules"]
    assert (status, message) == ("ok", "kube-proxy routes default/example-service to 2 endpoint(s)")
    # each endpoint once per branch with its share; the `--rcheck` rules are the affinity, said once
    assert tree.count("session affinity ClientIP, 10800 s") == 2  # cluster IP and node port
    for ip in PODS:
        assert tree.count(f"→ DNAT {ip}:8080") == 2, tree
    assert "(p=0.50, 50%)" in tree and "(rest, 50%)" in tree
    status, message, detail = result["traffic"]
    assert status == "ok", result["traffic"]
    assert "session affinity ClientIP, 10800 s: one client, one endpoint" in message
    for label in ("cluster IP", "node port"):
        target = result["targets"][label]
        assert target["answered"] == target["tries"] == 12
        assert len(target["served"]) == 1, target  # the same client, the same pod every time
    # the node's one address is one client for both ways in: the pod it got first keeps it
    assert result["targets"]["cluster IP"]["served"] == result["targets"]["node port"]["served"]


def test_a_dual_stack_service_is_traced_and_reached_in_both_families(dual: Cluster) -> None:
    result = dual.walk(tries=16)
    status, message, tree = result["rules"]
    assert (status, message) == ("ok", "kube-proxy routes default/example-service to 4 endpoint(s)"), result["rules"]
    assert "IPv4 cluster IP 10.254.124.145:8080/tcp" in tree
    assert "IPv6 cluster IP [fd00:254::145]:8080/tcp" in tree
    for ip in PODS6:
        assert f"→ DNAT [{ip}]:8080" in tree
    assert result["traffic"][0] == "ok", result["traffic"]
    v4, v6 = result["targets"]["cluster IP (IPv4)"], result["targets"]["cluster IP (IPv6)"]
    assert v4["answered"] == v4["tries"] == 16 and v6["answered"] == v6["tries"] == 16
    # through ip6tables' DNAT to both IPv6 pods (random 50/50: 1 in 2**15 that one never does)
    assert set(v6["served"]) == {f"[{ip}]:8080" for ip in PODS6}, v6
    assert set(v4["served"]) == {f"{ip}:8080" for ip in PODS}, v4
