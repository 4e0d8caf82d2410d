"""A node with pods for real: a node namespace with docker0 on FLANNEL_SUBNET and a LAN side, two pod
namespaces on veths running HTTP servers that name their pod. Used by the kernel-path and the smoke
step tests."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

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
# the same server on a pod's IPv6 address too (dual-stack): one process, one thread per address, each
# answer naming the address it was asked at
SERVER_DUAL = (
    "import http.server, socket, sys, threading\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = f'served by pod {self.server.server_address[0]}\\n'.encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class V6(http.server.ThreadingHTTPServer):\n"
    "    address_family = socket.AF_INET6\n"
    "servers = [(V6 if ':' in ip else http.server.ThreadingHTTPServer)((ip, 8080), H) for ip in sys.argv[1:]]\n"
    "for s in servers[1:]:\n"
    "    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
    "servers[0].serve_forever()\n"
)
PODS = ("172.30.38.2", "172.30.38.3")
PODS6 = ("fd00:30:38::2", "fd00:30:38::3")
SERVICE = Service("default", "example-service", "10.254.124.145", 8080, [f"{ip}:8080" for ip in PODS], node_port=30554)
SERVICE6 = Service("default", "example-service", "fd00:254::145", 8080, [f"[{ip}]:8080" for ip in PODS6],
                   node_port=30554)
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


def make_cluster(rules: bool = True, affinity: int | None = None, dual: bool = False) -> Iterator[Cluster]:
    """The node and its two pods; with `rules`, kube-proxy's iptables rules for the service (the
    article's, or newer ones with ClientIP `affinity`); with `dual`, the pods and the service on IPv6
    too (ip6tables)."""
    node = lab.Netns()
    pods: list[lab.Netns] = []
    made = Cluster(node, pods)
    try:
        node.ip("link", "add", "docker0", "type", "bridge")
        node.ip("addr", "add", "172.30.38.1/24", "dev", "docker0")
        node.ip("link", "set", "docker0", "up")
        if dual:
            node.ip("addr", "add", "fd00:30:38::1/64", "dev", "docker0", "nodad")
        # the node's LAN side: a veth whose peer stays in the namespace (no dummy module on this kernel)
        node.ip("link", "add", "eth0", "type", "veth", "peer", "name", "lan0")
        node.ip("addr", "add", f"{NODE_ADDRESS}/24", "dev", "eth0")
        node.ip("link", "set", "lan0", "up")
        node.ip("link", "set", "eth0", "up")
        node.ip("route", "add", "default", "via", "192.168.56.1", "dev", "eth0", "onlink")
        if dual:  # a cluster IP is on no link: the node routes it by its default route, then DNAT rewrites it
            node.ip("addr", "add", "fd00:56::11/64", "dev", "eth0", "nodad")
            node.ip("-6", "route", "add", "default", "via", "fd00:56::1", "dev", "eth0", "onlink")
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
            addresses = [ip]
            if dual:
                pod.ip("addr", "add", f"{PODS6[n]}/64", "dev", "eth0", "nodad")
                pod.ip("-6", "route", "add", "default", "via", "fd00:30:38::1")
                addresses.append(PODS6[n])
            made.servers.append(subprocess.Popen(pod.prefix() + [sys.executable, "-c", SERVER_DUAL if dual else SERVER,
                                                                 *addresses],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for ip in PODS + (PODS6 if dual else ()):
            lab.wait_for(lambda ip=ip: node.exec("python3", "-c", f"import socket; socket.create_connection(('{ip}', 8080), 1)",
                                                   check=False).returncode == 0, 10, f"the pod server at {ip}")
        if rules:
            service = dataclasses.replace(SERVICE, affinity=affinity)
            # the article's rules, unless affinity asks for kube-proxy's newer layout with it
            node.exec("iptables-restore", input=iptables_save([service], old=affinity is None))
            if dual:
                node.exec("ip6tables-restore", input=iptables_save([dataclasses.replace(SERVICE6, affinity=affinity)]))
        yield made
    finally:
        for server in made.servers:
            server.kill()
            server.wait()
        for pod in pods:
            pod.delete()
        node.delete()
