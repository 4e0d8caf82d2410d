"""The service path for real: a node namespace with docker0 on FLANNEL_SUBNET, two pod namespaces on
veths running HTTP servers, kube-proxy's rules (the article's, by kube-proxy's hash) loaded with
iptables-restore. The traffic sub-step, run inside the node namespace, reaches both pods through
real DNAT; a stopped pod shows as a partial failure; without the rules the kube-proxy sub-step fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import kubeproxy_nft as nft
from tests.podlab import NODE_ADDRESS, SERVICE, Cluster, make_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from make_cluster(rules=True)


def test_traffic_reaches_both_pods_through_real_dnat(cluster: Cluster) -> None:
    result = cluster.walk()
    assert result["rules"][:2] == ["ok", "kube-proxy routes default/example-service to 2 endpoint(s)"]
    assert "DNAT 172.30.38.2:8080" in result["rules"][2]
    assert result["traffic"][0] == "ok", result["traffic"]
    for label in ("cluster IP", "node port"):
        target = result["targets"][label]
        assert target["answered"] == target["tries"] == 20
        # random 50/50: both pods serve (1 in 2**19 that one never does)
        assert set(target["served"]) == {"172.30.38.2:8080", "172.30.38.3:8080"}, target


def test_one_stopped_pod_is_a_partial_failure(cluster: Cluster) -> None:
    cluster.servers[1].kill()
    cluster.servers[1].wait()
    result = cluster.walk()
    status, message, detail = result["traffic"]
    assert status == "warn"
    assert "requests answered" in message and not message.startswith("40 of 40")
    assert "never answered: 172.30.38.3:8080" in detail
    assert "Connection refused" in detail
    for label in ("cluster IP", "node port"):
        assert set(result["targets"][label]["served"]) == {"172.30.38.2:8080"}


def test_without_the_rules_the_kube_proxy_sub_step_fails(cluster: Cluster) -> None:
    cluster.node.exec("iptables", "-t", "nat", "-F")
    result = cluster.walk()
    assert result["rules"][:2] == [
        "failed", "no kube-proxy rules for default/example-service in the live rules (iptables-save)"]
    assert "kube-proxy runs on this node" in result["rules"][2]
    assert "traffic" not in result
    # nothing of kube-proxy's in any mode: every listing read says so
    cluster.node.exec("iptables", "-t", "nat", "-X")
    result = cluster.walk()
    assert result["rules"][1] == ("no kube-proxy rules on this node: the nat table has no KUBE-SERVICES chain, and "
                                  "nft list ruleset holds none either"), result["rules"]


def test_in_nftables_mode_both_sub_steps_pass_through_nfts_dnat(cluster: Cluster) -> None:
    """kube-proxy switched to nftables mode: its iptables rules gone, its table in their place. The same
    two sub-steps trace the nft path and send traffic through nft's numgen and DNAT to both pods."""
    cluster.node.exec("iptables", "-t", "nat", "-F")
    cluster.node.exec("iptables", "-t", "nat", "-X")
    service = nft.Service("default", "example-service", SERVICE.cluster_ip, SERVICE.port, SERVICE.endpoints,
                          port_name="", node_port=SERVICE.node_port)
    # kube-proxy drops what is left for its service CIDR after DNAT: this cluster's, not the pods' 172.30/16
    cluster.node.exec("nft", "-f", "-", input=nft.script([service], node_ips={4: [NODE_ADDRESS]},
                                                         service_cidr={4: "10.254.0.0/16"}))
    result = cluster.walk()
    status, message, tree = result["rules"]
    assert (status, message) == ("ok", "kube-proxy routes default/example-service to 2 endpoint(s) (nftables mode)")
    assert tree.splitlines()[0] == "default/example-service  (kube-proxy nftables mode)"
    assert "cluster IP 10.254.124.145:8080/tcp  (map service-ips" in tree
    assert "node port 30554/tcp  (map service-nodeports" in tree
    assert result["traffic"][0] == "ok", result["traffic"]
    for label in ("cluster IP", "node port"):
        target = result["targets"][label]
        assert target["answered"] == target["tries"] == 20
        # numgen random mod 2: both pods serve (1 in 2**19 that one never does)
        assert set(target["served"]) == {"172.30.38.2:8080", "172.30.38.3:8080"}, target
