"""The service path for real: a node namespace with docker0 on FLANNEL_SUBNET, two pod namespaces on
veths running HTTP servers, kube-proxy's rules (the article's, by kube-proxy's hash) loaded with
iptables-restore. The traffic sub-step, run inside the node namespace, reaches both pods through
real DNAT; a stopped pod shows as a partial failure; without the rules the kube-proxy sub-step fails."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests import lab
from tests.kubeproxy import Service, iptables_save

SERVER = (
    "import http.server, sys\n"
    "ip = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = f'served by pod {ip}\\n'.encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.ThreadingHTTPServer((ip, 8080), H).serve_forever()\n"
)
PODS = ("172.30.38.2", "172.30.38.3")
SERVICE = Service("default", "example-service", "10.254.124.145", 8080, [f"{ip}:8080" for ip in PODS], node_port=30554)
NODE_ADDRESS = "192.168.56.11"


@dataclass
class Cluster:
    node: lab.Netns
    pods: list[lab.Netns]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def walk(self, tries: int = 20) -> dict:
        done = subprocess.run(self.node.prefix() + [sys.executable, "-m", "tests.smoke_walk", "default",
                                                     "example-service", NODE_ADDRESS, str(tries)],
                              capture_output=True, text=True, timeout=120, cwd=lab.REPO,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(lab.REPO)})
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    node = lab.Netns()
    pods: list[lab.Netns] = []
    made = Cluster(node, pods)
    try:
        node.ip("link", "add", "docker0", "type", "bridge")
        node.ip("addr", "add", "172.30.38.1/24", "dev", "docker0")
        node.ip("link", "set", "docker0", "up")
        # the node's LAN side: a veth whose peer stays in the namespace (no dummy module on this kernel)
        node.ip("link", "add", "eth0", "type", "veth", "peer", "name", "lan0")
        node.ip("addr", "add", f"{NODE_ADDRESS}/24", "dev", "eth0")
        node.ip("link", "set", "lan0", "up")
        node.ip("link", "set", "eth0", "up")
        node.ip("route", "add", "default", "via", "192.168.56.1", "dev", "eth0", "onlink")
        for n, ip in enumerate(PODS):
            pod = lab.Netns()
            pods.append(pod)
            host_end = f"veth{n}{pod.name[-4:]}"
            lab.run("ip", "link", "add", host_end, "netns", node.name, "type", "veth", "peer", "name", "eth0",
                    "netns", pod.name)
            node.ip("link", "set", host_end, "master", "docker0", "up")
            pod.ip("addr", "add", f"{ip}/24", "dev", "eth0")
            pod.ip("link", "set", "eth0", "up")
            pod.ip("route", "add", "default", "via", "172.30.38.1")
            made.servers.append(subprocess.Popen(pod.prefix() + [sys.executable, "-c", SERVER, ip],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for ip in PODS:
            lab.wait_for(lambda ip=ip: node.exec("python3", "-c", f"import socket; socket.create_connection(('{ip}', 8080), 1)",
                                                   check=False).returncode == 0, 10, f"the pod server at {ip}")
        node.exec("iptables-restore", input=iptables_save([SERVICE], old=True))
        yield made
    finally:
        for server in made.servers:
            server.kill()
            server.wait()
        for pod in pods:
            pod.delete()
        node.delete()


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
    assert result["rules"][:2] == ["failed", "no kube-proxy rules for default/example-service"]
    assert "kube-proxy runs on this node" in result["rules"][2]
    assert "traffic" not in result
