"""The kernel's own path through kube-proxy-format nftables rules: a node namespace holding the rules and
two pod namespaces each serving `served by pod <ip>` (tests/podlab.py's lab); HTTP from the node to the cluster IP reaches both
pods through nft's numgen and DNAT, to the node's address at the node port reaches a pod, and with
ClientIP affinity one client keeps its pod. The trace of the node's live `nft list ruleset` names
exactly the pods the kernel reached."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from tests.kubeproxy_nft import Service, script
from tests.podlab import NODE_ADDRESS, PODS, Cluster, make_cluster
from wizard import nftables

# the cluster IPs outside the lab's pod subnet (172.30.38.0/24): kube-proxy drops what is left for its
# service CIDR after DNAT, so that CIDR must not hold the pods
SERVICE_CIDR = {4: "10.254.0.0/16"}
WEB = Service("lab", "web", "10.254.0.10", 80, [f"{ip}:8080" for ip in PODS], node_port=30080)
STICKY = Service("lab", "sticky", "10.254.0.11", 80, [f"{ip}:8080" for ip in PODS], affinity=600)

# one process per batch of requests: each request a new connection, so nft picks an endpoint for each
CLIENT = """
import json, sys, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
seen = []
for _ in range(n):
    with urllib.request.urlopen(url, timeout=3) as answer:
        seen.append(answer.read().decode().strip())
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def node() -> Iterator[Cluster]:
    """podlab's node and pods (no iptables rules), with kube-proxy's nftables table loaded on the node."""
    made = make_cluster(rules=False)
    cluster = next(made)
    try:
        cluster.node.exec("nft", "-f", "-", input=script([WEB, STICKY], node_ips={4: [NODE_ADDRESS]},
                                                          service_cidr=SERVICE_CIDR))
        yield cluster
    finally:
        made.close()  # make_cluster's own cleanup: servers, pods, the node


def get(cluster: Cluster, url: str, n: int) -> list[str]:
    done = cluster.node.exec(sys.executable, "-c", CLIENT, url, str(n), timeout=120)
    return json.loads(done.stdout)


def served(answers: list[str]) -> set[str]:
    assert all(a.startswith("served by pod ") for a in answers), answers
    return {a.removeprefix("served by pod ") for a in answers}


def test_the_cluster_ip_reaches_both_pods_through_nft(node: Cluster) -> None:
    assert served(get(node, f"http://{WEB.cluster_ip}:80/", 40)) == set(PODS)


def test_the_node_port_reaches_a_pod(node: Cluster) -> None:
    assert served(get(node, f"http://{NODE_ADDRESS}:{WEB.node_port}/", 6)) <= set(PODS)


def test_the_trace_of_the_live_rules_names_the_pods_the_kernel_reached(node: Cluster) -> None:
    live = node.node.exec("nft", "list", "ruleset").stdout
    path = nftables.trace(nftables.parse(live), "lab", "web")
    assert path.endpoints == [f"{ip}:8080" for ip in PODS]
    assert [(b.kind, b.address) for b in path.branches] == [("cluster IP", "10.254.0.10:80/tcp"), ("node port", "30080/tcp")]
    reached = served(get(node, f"http://{WEB.cluster_ip}:80/", 40))
    assert {e.ip for b in path.branches for e in b.endpoints} == reached


def test_affinity_keeps_a_client_on_one_pod(node: Cluster) -> None:
    answers = served(get(node, f"http://{STICKY.cluster_ip}:80/", 20))
    assert len(answers) == 1 and answers <= set(PODS)
    path = nftables.trace(nftables.parse(node.node.exec("nft", "list", "ruleset").stdout), "lab", "sticky")
    [branch] = path.branches
    assert branch.affinity == "ClientIP, 600 s (10m)" and len(branch.endpoints) == 2
    # the kernel noted the client in the set of the endpoint it got first
    sets = node.node.exec("nft", "list", "sets").stdout.split("\tset ")
    noted = [s.split(" {")[0] for s in sets if s.startswith("affinity-") and "elements = {" in s]
    assert noted == [f"{branch.endpoints[PODS.index(next(iter(answers)))].via.replace('endpoint-', 'affinity-', 1)}"]
