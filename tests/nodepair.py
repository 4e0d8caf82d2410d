"""Two nodes for real, joined the way flannel's host-gw backend joins them: two node namespaces on an
underlay bridge (in a namespace of its own, so the host is never touched), each with docker0 on its
own lease's subnet, pod namespaces on veths running HTTP servers that name their pod
(podlab.SERVER), and on each node a route to the other node's subnet via that node's address.

Node A also gets what the smoke step needs from a node: a real etcd on its loopback holding the
flannel config and both nodes' leases (BackendType host-gw, so the mesh analysis finds the node that
holds a pod IP), and, per test, the Kubernetes API stand-in with --kube-proxy."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests import lab
from tests.podlab import SERVER

PREFIX = "/kube-centos/network"  # the answers' default etcd prefix
CONFIG = {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "host-gw"}}
API_PORT = 6443
ENV_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str  # on the underlay: the lease's PublicIP, the Kubernetes node's InternalIP
    subnet: str  # the node's lease, "172.30.11.0/24"; docker0 takes its .1
    pods: tuple[str, ...]  # pod IPs in that subnet

    @property
    def bridge(self) -> str:
        return self.subnet.rsplit(".", 1)[0] + ".1"

    @property
    def lease_key(self) -> str:
        return f"{PREFIX}/subnets/{self.subnet.replace('/', '-')}"


NODE_A = NodeSpec("node-a", "192.168.64.11", "172.30.11.0/24", ("172.30.11.2", "172.30.11.3"))
NODE_B = NodeSpec("node-b", "192.168.64.12", "172.30.12.0/24", ("172.30.12.2",))


@dataclass
class LabNode:
    spec: NodeSpec
    ns: lab.Netns
    pods: dict[str, lab.Netns] = field(default_factory=dict)  # by pod IP


@dataclass
class Pair:
    underlay: lab.Netns
    nodes: list[LabNode]
    etcd: lab.Etcd
    servers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by pod IP

    @property
    def a(self) -> LabNode:
        return self.nodes[0]

    @property
    def b(self) -> LabNode:
        return self.nodes[1]


def _add_node(stack: ExitStack, underlay: lab.Netns, spec: NodeSpec, n: int) -> LabNode:
    ns = lab.Netns()
    stack.callback(ns.delete)
    node = LabNode(spec, ns)
    # the underlay: the node's eth0, its peer on the bridge in the underlay namespace
    lab.run("ip", "link", "add", f"u{n}", "netns", underlay.name, "type", "veth", "peer", "name", "eth0",
            "netns", ns.name)
    underlay.ip("link", "set", f"u{n}", "master", "br0", "up")
    ns.ip("addr", "add", f"{spec.address}/24", "dev", "eth0")
    ns.ip("link", "set", "eth0", "up")
    # a default route, as a node has: the cluster IP is routed by it before kube-proxy's DNAT rewrites it
    ns.ip("route", "add", "default", "via", "192.168.64.1", "dev", "eth0", "onlink")
    ns.ip("link", "add", "docker0", "type", "bridge")
    ns.ip("addr", "add", f"{spec.bridge}/24", "dev", "docker0")
    ns.ip("link", "set", "docker0", "up")
    for i, ip in enumerate(spec.pods):
        pod = lab.Netns()
        stack.callback(pod.delete)
        node.pods[ip] = pod
        lab.run("ip", "link", "add", f"veth{i}", "netns", ns.name, "type", "veth", "peer", "name", "eth0",
                "netns", pod.name)
        ns.ip("link", "set", f"veth{i}", "master", "docker0", "up")
        pod.ip("addr", "add", f"{ip}/24", "dev", "eth0")
        pod.ip("link", "set", "eth0", "up")
        pod.ip("route", "add", "default", "via", spec.bridge)
    return node


@contextmanager
def make_pair(specs: tuple[NodeSpec, ...] = (NODE_A, NODE_B)) -> Iterator[Pair]:
    """The nodes, their pods serving, routes between them, and etcd in the first node; all of it
    (namespaces, processes, etcd's data dir) removed on the way out, whatever happened."""
    with ExitStack() as stack:
        underlay = lab.Netns()
        stack.callback(underlay.delete)
        underlay.ip("link", "add", "br0", "type", "bridge")
        underlay.ip("link", "set", "br0", "up")
        nodes = [_add_node(stack, underlay, spec, n) for n, spec in enumerate(specs)]
        for node in nodes:  # host-gw: each other node's subnet via that node's address
            for other in nodes:
                if other is not node:
                    node.ns.ip("route", "add", other.spec.subnet, "via", other.spec.address, "dev", "eth0")
        etcd = lab.Etcd(netns=nodes[0].ns, port=2379)
        stack.callback(etcd.close)
        pair = Pair(underlay, nodes, etcd)
        stack.callback(_stop_all, pair.servers)
        for node in nodes:
            for ip, pod in node.pods.items():
                pair.servers[ip] = subprocess.Popen(pod.prefix() + [sys.executable, "-c", SERVER, ip],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        etcd.ctl("put", f"{PREFIX}/config", json.dumps(CONFIG))
        for node in nodes:
            etcd.ctl("put", node.spec.lease_key, json.dumps({"PublicIP": node.spec.address, "BackendType": "host-gw"}))
        # every pod answers from the first node, across the underlay too, before any test relies on it
        for ip in pair.servers:
            lab.wait_for(lambda ip=ip: answers(pair.a, ip), 10, f"the pod server at {ip} from {pair.a.spec.name}")
        yield pair


def answers(node: LabNode, ip: str, port: int = 8080) -> bool:
    probe = f"import socket; socket.create_connection(('{ip}', {port}), 1)"
    return node.ns.exec("python3", "-c", probe, check=False).returncode == 0


def _stop_all(servers: dict[str, subprocess.Popen[bytes]]) -> None:
    for server in servers.values():
        server.kill()
        server.wait()


class Api:
    """The Kubernetes API stand-in (and kube-proxy) running in one node's namespace (this pair's node A,
    or a mesh lab's node): `nodes` {name: InternalIP}, `pods` [(node name, pod IP)] in placement order."""

    def __init__(self, ns: lab.Netns, nodes: dict[str, str], pods: list[tuple[str, str]]) -> None:
        argv = ns.prefix() + [
            sys.executable, str(lab.STANDINS / "kubeapi.py"), "--port", str(API_PORT), "--kube-proxy",
            "--nodes", ",".join(f"{name}={ip}" for name, ip in nodes.items()),
            "--pod-ips", ",".join(f"{name}:{ip}" for name, ip in pods)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # the stand-in prints it once it listens (or exits)
        if line != "listening":
            self.close()
            raise AssertionError(f"the API stand-in did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")

    @classmethod
    def on_pair(cls, pair: Pair, nodes: list[LabNode], pods: list[tuple[LabNode, str]]) -> Api:
        return cls(pair.a.ns, {n.spec.name: n.spec.address for n in nodes}, [(n.spec.name, ip) for n, ip in pods])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


PAIR_ANSWERS = ("version: 1\n"
                "network:\n  cidr: 172.30.0.0/16\n  backend:\n    type: host-gw\n"
                "flanneld:\n  iface: eth0\n")
SMOKE_ANSWERS = "smoke_test:\n  kubeconfig: /etc/kubernetes/admin.conf\n  container_port: 8080\n  timeout_s: 10\n"


class Wizard:
    """`flannel-wizard` run in a node's namespace on a --root holding that node's files, with answers
    `base` (etcd, network, flanneld) plus the smoke test against the API stand-in."""

    def __init__(self, ns: lab.Netns, tmp: Path, root: Path, base: str) -> None:
        self.ns = ns
        self.tmp = tmp
        self.root = root
        self.base = base
        (self.root / "etc/kubernetes").mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.root / "etc/kubernetes/admin.conf"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
            f"clusters: [{{name: lab, cluster: {{server: 'http://127.0.0.1:{API_PORT}'}}}}]\n"
            "contexts: [{name: lab, context: {cluster: lab, user: lab}}]\nusers: [{name: lab, user: {}}]\n")

    @classmethod
    def on_pair(cls, pair: Pair, tmp: Path) -> Wizard:
        """Node A of the pair, its subnet.env written as flanneld would have (the pair runs no flanneld)."""
        root = tmp / "root"
        (root / "run/flannel").mkdir(parents=True)
        (root / "run/flannel/subnet.env").write_text(
            f"FLANNEL_NETWORK={CONFIG['Network']}\nFLANNEL_SUBNET={pair.a.spec.bridge}/24\nFLANNEL_MTU=1500\n"
            "FLANNEL_IPMASQ=false\n")
        return cls(pair.a.ns, tmp, root, PAIR_ANSWERS)

    def env(self) -> dict[str, str]:
        return {"PATH": ENV_PATH, "HOME": str(self.tmp), "PYTHONPATH": str(lab.REPO)}

    def answers(self, extra: str = "") -> Path:
        path = self.tmp / "smoke-answers.yaml"
        path.write_text(self.base + SMOKE_ANSWERS + extra)
        return path

    def run(self, command: str = "apply", extra: str = "") -> tuple[int, list[dict]]:
        argv = self.ns.prefix() + lab.wizard_argv(command, str(self.answers(extra)), "--only", "smoke",
                                                  "--root", str(self.root), "--output", "json")
        if command == "apply":
            argv.append("--yes")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=lab.REPO,
                              stdin=subprocess.DEVNULL, env=self.env())
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def substeps(events: list[dict]) -> dict[str, dict]:
    """The final event of each sub-step, by title."""
    return {e["substep"]["title"]: e for e in events if e.get("kind") == "substep" and e["status"] != "running"}


EXPLAIN = (
    "import dataclasses, json, sys\n"
    "from wizard.answers import load\n"
    "from wizard.node import Node\n"
    "from wizard.steps import Context\n"
    "from wizard.steps.mesh import explain_pod\n"
    "ctx = Context(load(sys.argv[1]), Node(sys.argv[2]))\n"
    "try:\n"
    "    checks = explain_pod(ctx, sys.argv[3])\n"
    "finally:\n"
    "    ctx.close()\n"
    "json.dump([dataclasses.asdict(c) for c in checks], sys.stdout)\n"
)


def explain_pod(wizard: Wizard, ip: str) -> list[dict]:
    """What the engine's mesh analysis says about a pod IP, asked on its own from the wizard's node with
    the same answers and root: what the smoke step must have handed on."""
    done = subprocess.run(wizard.ns.prefix() + [sys.executable, "-c", EXPLAIN, str(wizard.answers()),
                                                str(wizard.root), ip],
                          capture_output=True, text=True, timeout=60, cwd=lab.REPO, env=wizard.env())
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
