"""The kernel's own path through kube-proxy-format nftables rules: a node namespace holding the rules and
two pod namespaces each serving `served by pod <ip>`; HTTP from the node to the cluster IP reaches both
pods through nft's numgen and DNAT, to the node's address at the node port reaches a pod, and with
ClientIP affinity one client keeps its pod. The trace of the node's live `nft list ruleset` names
exactly the pods the kernel reached."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests import lab
from tests.kubeproxy_nft import Service, script
from tests.podlab import SERVER
from wizard import nftables

PODS = ("10.180.0.2", "10.180.0.3")
NODE_ADDRESS = "192.168.57.11"
WEB = Service("lab", "web", "172.30.0.10", 80, [f"{ip}:8080" for ip in PODS], node_port=30080)
STICKY = Service("lab", "sticky", "172.30.0.11", 80, [f"{ip}:8080" for ip in PODS], affinity=600)

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


class Namespace:
    """A network namespace named fwtest-nft-…, deleted (with what runs in it) by `delete`."""

    def __init__(self, role: str) -> None:
        self.name = f"fwtest-nft-{role}-{uuid.uuid4().hex[:6]}"
        lab.run("ip", "netns", "add", self.name)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> str:
        return lab.run("ip", "-n", self.name, *args).stdout

    def exec(self, *argv: str, **kw) -> subprocess.CompletedProcess[str]:
        return lab.run("ip", "netns", "exec", self.name, *argv, **kw)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        lab.Netns.delete(self)  # type: ignore[arg-type]  # kills what runs inside, then deletes it


@dataclass
class Node:
    node: Namespace
    pods: list[Namespace] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def get(self, url: str, n: int) -> list[str]:
        done = self.node.exec(sys.executable, "-c", CLIENT, url, str(n), timeout=120)
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    made = Node(Namespace("node"))
    try:
        node = made.node
        node.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        node.ip("link", "add", "cbr0", "type", "bridge")
        node.ip("addr", "add", "10.180.0.1/24", "dev", "cbr0")
        node.ip("link", "set", "cbr0", "up")
        # the node's own address for node ports, on a veth whose peer stays inside (no dummy module here)
        node.ip("link", "add", "eth0", "type", "veth", "peer", "name", "lan0")
        node.ip("addr", "add", f"{NODE_ADDRESS}/24", "dev", "eth0")
        node.ip("link", "set", "lan0", "up")
        node.ip("link", "set", "eth0", "up")
        # a route for the cluster IPs, as a node has: the output hook DNATs only after a route is found
        node.ip("route", "add", "default", "via", "192.168.57.1", "dev", "eth0", "onlink")
        for n, ip in enumerate(PODS):
            pod = Namespace(f"pod{n}")
            made.pods.append(pod)
            host_end = f"vnft{n}{uuid.uuid4().hex[:4]}"
            lab.run("ip", "link", "add", host_end, "netns", node.name, "type", "veth", "peer", "name", "eth0",
                    "netns", pod.name)
            node.ip("link", "set", host_end, "master", "cbr0", "up")
            pod.ip("addr", "add", f"{ip}/24", "dev", "eth0")
            pod.ip("link", "set", "eth0", "up")
            pod.ip("route", "add", "default", "via", "10.180.0.1")
            made.servers.append(subprocess.Popen(pod.prefix() + [sys.executable, "-c", SERVER, ip],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for ip in PODS:
            lab.wait_for(lambda ip=ip: node.exec(
                sys.executable, "-c", f"import socket; socket.create_connection(('{ip}', 8080), 1)",
                check=False).returncode == 0, 10, f"the pod server at {ip}")
        node.exec("nft", "-f", "-", input=script([WEB, STICKY], node_ips={4: [NODE_ADDRESS]}))
        yield made
    finally:
        for server in made.servers:
            server.kill()
            server.wait()
        for pod in made.pods:
            pod.delete()
        made.node.delete()


def served(answers: list[str]) -> set[str]:
    assert all(a.startswith("served by pod ") for a in answers), answers
    return {a.removeprefix("served by pod ") for a in answers}


def test_the_cluster_ip_reaches_both_pods_through_nft(node: Node) -> None:
    assert served(node.get(f"http://{WEB.cluster_ip}:80/", 40)) == set(PODS)


def test_the_node_port_reaches_a_pod(node: Node) -> None:
    assert served(node.get(f"http://{NODE_ADDRESS}:{WEB.node_port}/", 6)) <= set(PODS)


def test_the_trace_of_the_live_rules_names_the_pods_the_kernel_reached(node: Node) -> None:
    live = node.node.exec("nft", "list", "ruleset").stdout
    path = nftables.trace(nftables.parse(live), "lab", "web")
    assert path.endpoints == [f"{ip}:8080" for ip in PODS]
    assert [(b.kind, b.address) for b in path.branches] == [("cluster IP", "172.30.0.10:80/tcp"), ("node port", "30080/tcp")]
    reached = served(node.get(f"http://{WEB.cluster_ip}:80/", 40))
    assert {e.ip for b in path.branches for e in b.endpoints} == reached


def test_affinity_keeps_a_client_on_one_pod(node: Node) -> None:
    answers = served(node.get(f"http://{STICKY.cluster_ip}:80/", 20))
    assert len(answers) == 1 and answers <= set(PODS)
    path = nftables.trace(nftables.parse(node.node.exec("nft", "list", "ruleset").stdout), "lab", "sticky")
    [branch] = path.branches
    assert branch.affinity == "ClientIP, 600 s (10m)" and len(branch.endpoints) == 2
    # the kernel noted the client in the set of the endpoint it got first
    sets = node.node.exec("nft", "list", "sets").stdout.split("\tset ")
    noted = [s.split(" {")[0] for s in sets if s.startswith("affinity-") and "elements = {" in s]
    assert noted == [f"{branch.endpoints[PODS.index(next(iter(answers)))].via.replace('endpoint-', 'affinity-', 1)}"]
