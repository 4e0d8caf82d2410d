"""The multi-node lab for the mesh check (issue 12): N nodes on a real underlay, a real etcd, flannel's
vxlan (or host-gw) state programmed by a flanneld stand-in process in every node, docker0 on each
node's lease and a pod per node serving HTTP — and the faults operators meet, each done for real.

    underlay namespace fwtest-<id>-ul: bridge br0 192.168.64.1/24, etcd on 192.168.64.1:2379
      |-- veth n1 <-> eth0 of fwtest-<id>-node1 (192.168.64.11/24, MTU 1500)
      |-- veth n2 <-> eth0 of fwtest-<id>-node2 (192.168.64.12/24) ...
      `-- (off_segment > 0) veth rt <-> router fwtest-<id>-rt (192.168.64.254 | br1 192.168.65.1/24)
                                        `-- veth n3 <-> eth0 of node3 (192.168.65.13/24, via .1)
    each node: tests/standins/vxlanflanneld.py running (its -root under the lab's tmp dir),
               flannel.<VNI> (vxlan), docker0 <lease .1>, pod namespace fwtest-<id>-nodeK-p1 on a
               veth to docker0 with <lease .2>, an HTTP server on :8080 naming its pod

Nothing leaves the namespaces made here: nodes' default route points at the underlay namespace,
which has no route out. Everything is removed on exit, also when the setup fails half-way.

    with mesh_lab(nodes=3) as mesh:
        node1, node2, _ = mesh.nodes
        assert mesh.curl(node1, node2.pods[0]) == f"served by pod {node2.pods[0]} on node2\\n"
        mesh.drop_udp(node2)
        assert mesh.curl(node1, node2.pods[0]) is None
        mesh.heal()   # undoes the faults that can be undone
        done = mesh.run_in(node1, lab.wizard_argv("check", str(mesh.answers(node1)), "--root", str(node1.root)))

The tests' `mesh` fixture (tests/conftest.py) is `mesh_lab()` with its defaults.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import lab

UNDERLAY = ipaddress.IPv4Network("192.168.64.0/24")
UNDERLAY_GW = "192.168.64.1"  # br0 in the underlay namespace; etcd listens here
ROUTER_NEAR = "192.168.64.254"  # the router's leg on br0 (only with off_segment)
FAR = ipaddress.IPv4Network("192.168.65.0/24")  # the second segment, behind the router
FAR_GW = "192.168.65.1"
PREFIX = "/kube-centos/network"
ETCD_PORT = 2379  # the underlay namespace is new: its ports are all free
FAKE_FIRST = 100  # bench leases' PublicIPs: 192.168.64.100 and up, on br0
POD_PORT = 8080
STOP_S = 10

# HTTPServer.server_bind asks DNS for its own name (socket.getfqdn): not here, where no resolver answers
SERVER = (
    "import http.server, socketserver, sys\n"
    "ip, node = sys.argv[1], sys.argv[2]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = f'served by pod {ip} on {node}\\n'.encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    def server_bind(self):\n"
    "        socketserver.TCPServer.server_bind(self); self.server_name, self.server_port = ip, self.server_address[1]\n"
    f"S((ip, {POD_PORT}), H).serve_forever()\n"
)
# GET http://IP:PORT/ for every IP at once; prints {ip: body or null}
CURL = (
    "import concurrent.futures, json, sys, urllib.request\n"
    "port, timeout, ips = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]\n"
    "def get(ip):\n"
    "    try:\n"
    "        with urllib.request.urlopen(f'http://{ip}:{port}/', timeout=timeout) as r:\n"
    "            return r.read().decode()\n"
    "    except Exception:\n"
    "        return None\n"
    "with concurrent.futures.ThreadPoolExecutor(max(1, len(ips))) as pool:\n"
    "    print(json.dumps(dict(zip(ips, pool.map(get, ips)))))\n"
)
# one ICMP echo (raw socket; there is no ping binary): payload SIZE bytes, DF when asked; prints the outcome
PING = (
    "import os, select, socket, struct, sys, time\n"
    "dst, size, df, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1', float(sys.argv[4])\n"
    "def csum(b):\n"
    "    b += b'\\0' * (len(b) % 2); s = sum(struct.unpack(f'!{len(b)//2}H', b)); s = (s >> 16) + (s & 0xffff)\n"
    "    return ~(s + (s >> 16)) & 0xffff\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
    "s.setsockopt(socket.IPPROTO_IP, 10, 2 if df else 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DO / DONT\n"
    "ident = os.getpid() & 0xffff; payload = bytes(i & 0xff for i in range(size))\n"
    "head = struct.pack('!BBHHH', 8, 0, 0, ident, 1)\n"
    "pkt = struct.pack('!BBHHH', 8, 0, csum(head + payload), ident, 1) + payload\n"
    "try:\n"
    "    s.sendto(pkt, (dst, 0))\n"
    "except OSError as e:\n"
    "    print('too-big' if e.errno == 90 else f'error {e}'); sys.exit()\n"
    "end = time.monotonic() + timeout\n"
    "while (left := end - time.monotonic()) > 0:\n"
    "    if not select.select([s], [], [], left)[0]: break\n"
    "    data, (src, _) = s.recvfrom(65535); icmp = data[(data[0] & 15) * 4:]\n"
    "    if src == dst and icmp[0] == 0 and struct.unpack('!H', icmp[4:6])[0] == ident:\n"
    "        print('answered'); sys.exit()\n"
    "    if icmp[0] == 3 and icmp[4 + 4 + 16:4 + 4 + 20] == socket.inet_aton(dst):\n"
    "        print('too-big' if icmp[1] == 4 else 'unreachable'); sys.exit()\n"
    "print('silent')\n"
)


def _run(argv: list[str], timeout: float = 30, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    return lab.run(*argv, timeout=timeout, check=check, **kw)


class NamedNetns(lab.Netns):
    """lab.Netns with the name the lab chooses (fwtest-<id>-<role>); made by create(), so the lab
    holds the object, and deletes it, before the namespace exists."""

    def __init__(self, name: str) -> None:  # deliberately not lab.Netns.__init__: create() does its work
        self.name = name

    def create(self) -> NamedNetns:
        _run(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        self.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        return self


class UnderlayEtcd(lab.Etcd):
    """lab.Etcd listening on the underlay bridge's address inside the underlay namespace (client
    2379, peer 127.0.0.1:2380 there), so every node reaches it over the underlay; start() it after
    construction so the lab can clean up a half-started one."""

    def __init__(self, netns: lab.Netns, host: str) -> None:  # not lab.Etcd.__init__, which starts it
        self.netns = netns
        self.tls = None
        self.dir = Path(tempfile.mkdtemp(prefix="fwtest-etcd-"))
        self.port = ETCD_PORT
        self.peer = ETCD_PORT + 1
        self.endpoint = f"http://{host}:{self.port}"
        self.proc = None


@dataclass
class MeshNode:
    """One node: its namespace, underlay address, the PublicIP its lease carries (the same unless the
    node was made by duplicate_public_ip), its lease, its --root (root/run/flannel/subnet.env), its pods."""

    name: str
    ns: NamedNetns
    address: str  # eth0's address
    public_ip: str
    root: Path
    uplink: tuple[NamedNetns, str]  # the bridge-side end of its eth0 veth: (namespace, ifname)
    lease: str = ""  # "172.30.1.0/24"
    pods: list[str] = field(default_factory=list)
    pod_ns: list[NamedNetns] = field(default_factory=list)
    flanneld: subprocess.Popen[bytes] | None = None
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        """The stand-in's stderr (glog lines, as flanneld's)."""
        return self.root.parent / "flanneld.log"

    @property
    def subnet_file(self) -> Path:
        return self.root / "run/flannel/subnet.env"

    def subnet_env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.subnet_file.read_text().splitlines())

    @property
    def overlay_ip(self) -> str:
        """The lease's .0: the address on flannel.<VNI> and the neighbour other nodes hold for it."""
        return str(ipaddress.IPv4Network(self.lease).network_address)


@dataclass(frozen=True)
class FakeLease:
    """A bench lease: a subnet whose PublicIP is an address on the underlay bridge (it answers ping
    and ARP, nothing else: no VTEP, no pods)."""

    subnet: str
    public_ip: str
    vtep_mac: str | None


class MeshLab:
    """The lab; see the module docstring. Build it with mesh_lab()."""

    def __init__(self, backend: str = "vxlan", vni: int = 1, network: str = "172.30.0.0/16",
                 subnet_len: int = 24, prefix: str = PREFIX) -> None:
        self.id = uuid.uuid4().hex[:6]
        self.backend = backend
        self.vni = vni
        self.network = network
        self.subnet_len = subnet_len
        self.prefix = prefix
        backend_cfg: dict[str, Any] = {"Type": backend, **({"VNI": vni} if backend == "vxlan" else {})}
        self.config: dict[str, Any] = {"Network": network, "SubnetLen": subnet_len, "Backend": backend_cfg}
        self.dev = f"flannel.{vni}"
        self.tmp = Path(tempfile.mkdtemp(prefix="fwtest-mesh-"))
        self.namespaces: list[NamedNetns] = []
        self.nodes: list[MeshNode] = []
        self.fakes: list[FakeLease] = []
        self.fakes_made = 0  # PublicIPs are never reused, so a removed fake's address can stay on br0
        self.underlay: NamedNetns | None = None
        self.router: NamedNetns | None = None
        self.etcd: UnderlayEtcd | None = None
        self._undo: list[Callable[[], None]] = []

    # ---- building -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """etcd's client URL, reachable from every node (not from the test process's namespace)."""
        return f"http://{UNDERLAY_GW}:{ETCD_PORT}"

    def _netns(self, role: str) -> NamedNetns:
        ns = NamedNetns(f"{lab.NS_PREFIX}{self.id}-{role}")
        self.namespaces.append(ns)
        return ns.create()

    def _build(self, count: int, off_segment: int, pods: int = 1) -> None:
        if not 0 <= off_segment < count:
            raise ValueError("off_segment: how many of the nodes sit behind the router (fewer than all)")
        self.build_underlay(router=off_segment > 0)
        assert self.etcd is not None
        self.etcd.ctl("put", f"{self.prefix}/config", json.dumps(self.config))
        for i in range(1, count + 1):
            far = i > count - off_segment
            self._add_node(f"node{i}", str((FAR if far else UNDERLAY).network_address + 10 + i))
        for node in self.nodes:
            self._await_lease(node)
        for node in self.nodes:
            self._add_pods(node, pods)
        self.wait_converged()

    def build_underlay(self, router: bool = False) -> None:
        """The underlay namespace with br0 and etcd started on it (no config written), and the router
        behind which off-segment nodes sit when `router`; nodes join with add_bare_node()."""
        ul = self.underlay = self._netns("ul")
        ul.ip("link", "add", "br0", "type", "bridge")
        _pin(ul, "br0", "02:fe:c0:a8:40:01")
        ul.ip("addr", "add", f"{UNDERLAY_GW}/{UNDERLAY.prefixlen}", "dev", "br0")
        ul.ip("link", "set", "br0", "up")
        # the way out of the lab is closed, and says so at once (a DNS lookup fails fast, not in 5 s)
        ul.ip("route", "add", "unreachable", "default")
        if router:
            rt = self.router = self._netns("rt")
            rt.ip("link", "add", "eth0", "type", "veth", "peer", "name", "rt", "netns", ul.name)
            ul.ip("link", "set", "rt", "master", "br0", "up")
            rt.ip("addr", "add", f"{ROUTER_NEAR}/{UNDERLAY.prefixlen}", "dev", "eth0")
            rt.ip("link", "set", "eth0", "up")
            rt.ip("link", "add", "br1", "type", "bridge")
            _pin(rt, "br1", "02:fe:c0:a8:41:01")
            rt.ip("addr", "add", f"{FAR_GW}/{FAR.prefixlen}", "dev", "br1")
            rt.ip("link", "set", "br1", "up")
            rt.ip("route", "add", "default", "via", UNDERLAY_GW)
            ul.ip("route", "add", str(FAR), "via", ROUTER_NEAR)
        self.etcd = UnderlayEtcd(ul, UNDERLAY_GW)
        self.etcd.start()

    def _add_node(self, name: str, address: str, public_ip: str | None = None) -> MeshNode:
        node = self.add_bare_node(name, address, public_ip)
        argv = [sys.executable, "-m", "tests.standins.vxlanflanneld", "-etcd-endpoints", self.endpoint,
                "-etcd-prefix", self.prefix, "-iface", "eth0", "-root", str(node.root)]
        if public_ip:
            argv += ["-public-ip", public_ip]
        with open(node.log, "ab") as log:
            node.flanneld = subprocess.Popen(node.ns.prefix() + argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                             cwd=lab.REPO, env=self._env(), start_new_session=True)
        return node

    def add_bare_node(self, name: str, address: str, public_ip: str | None = None) -> MeshNode:
        """A node namespace on the underlay (behind the router for an address in FAR) with its empty
        --root: no flanneld, no docker0, no pods."""
        far = ipaddress.IPv4Address(address) in FAR
        bridge_ns = self.router if far else self.underlay
        assert bridge_ns is not None
        ns = self._netns(name)
        root = self.tmp / name / "root"
        root.mkdir(parents=True)
        node = MeshNode(name, ns, address, public_ip or address, root, (bridge_ns, name))
        self.nodes.append(node)
        ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", name, "netns", bridge_ns.name)
        bridge_ns.ip("link", "set", name, "master", "br1" if far else "br0", "up")
        ns.ip("link", "set", "eth0", "mtu", "1500", "up")
        if far:
            ns.ip("addr", "add", f"{address}/{FAR.prefixlen}", "dev", "eth0")
            ns.ip("route", "add", "default", "via", FAR_GW, "dev", "eth0")
        else:
            ns.ip("addr", "add", f"{address}/{UNDERLAY.prefixlen}", "dev", "eth0")
            if self.router:
                ns.ip("route", "add", str(FAR), "via", ROUTER_NEAR, "dev", "eth0")
            ns.ip("route", "add", "default", "via", UNDERLAY_GW, "dev", "eth0")
        return node

    def _await_lease(self, node: MeshNode) -> None:
        def ready() -> bool:
            if node.flanneld is not None and node.flanneld.poll() is not None:
                raise AssertionError(f"{node.name}'s flanneld exited: {node.log.read_text()[-2000:]}")
            return node.subnet_file.exists()
        try:
            lab.wait_for(ready, 20, f"{node.name}'s subnet.env")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose(node)}") from None
        sn = ipaddress.IPv4Interface(node.subnet_env()["FLANNEL_SUBNET"]).network
        node.lease = str(sn)

    def _add_pods(self, node: MeshNode, count: int = 1) -> None:
        env = node.subnet_env()
        gateway = ipaddress.IPv4Interface(env["FLANNEL_SUBNET"])
        mtu = env["FLANNEL_MTU"]
        node.ns.ip("link", "add", "docker0", "type", "bridge")
        # docker gives docker0 a MAC of its own (02:42:…) and the --mtu it was given
        _pin(node.ns, "docker0", "02:42:" + ":".join(f"{b:02x}" for b in gateway.ip.packed), int(mtu))
        node.ns.ip("addr", "add", str(gateway), "dev", "docker0")
        node.ns.ip("link", "set", "docker0", "up")
        for k in range(1, count + 1):
            ip = str(gateway.ip + k)
            pod = self._netns(f"{node.name}-p{k}")
            host_end = f"veth{k}"
            _run(["ip", "-n", node.ns.name, "link", "add", host_end, "mtu", mtu, "type", "veth", "peer", "name",
                  "eth0", "mtu", mtu, "netns", pod.name])
            node.ns.ip("link", "set", host_end, "master", "docker0", "up")
            pod.ip("addr", "add", f"{ip}/{gateway.network.prefixlen}", "dev", "eth0")
            pod.ip("link", "set", "eth0", "up")
            pod.ip("route", "add", "default", "via", str(gateway.ip))
            node.pods.append(ip)
            node.pod_ns.append(pod)
            node.servers.append(subprocess.Popen(pod.prefix() + [sys.executable, "-S", "-c", SERVER, ip, node.name],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                 stdin=subprocess.DEVNULL, start_new_session=True))
        for ip in node.pods:
            lab.wait_for(lambda ip=ip: self.curl(node, ip) is not None, 10, f"the pod server {ip} on {node.name}")

    def _env(self) -> dict[str, str]:
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(lab.REPO),
                "TMPDIR": str(self.tmp), "LANG": "C.UTF-8"}

    # ---- looking ----------------------------------------------------------------------------------

    def node(self, name: str) -> MeshNode:
        return next(n for n in self.nodes if n.name == name)

    def leases(self) -> dict[str, dict[str, Any]]:
        """PREFIX/subnets/ as etcd holds it: {"172.30.1.0-24": {"PublicIP": ..., ...}}."""
        assert self.etcd is not None
        lines = self.etcd.ctl("get", "--prefix", f"{self.prefix}/subnets/").stdout.splitlines()
        return {lines[i].rsplit("/", 1)[-1]: json.loads(lines[i + 1]) for i in range(0, len(lines) - 1, 2)}

    def vxlan(self, node: MeshNode) -> dict[str, Any]:
        """`ip -d -j addr show flannel.<VNI>` of the node: one link's JSON."""
        return json.loads(node.ns.ip("-d", "-j", "addr", "show", "dev", self.dev))[0]

    def routes(self, node: MeshNode) -> list[dict[str, Any]]:
        return json.loads(node.ns.ip("-j", "-4", "route", "show") or "[]")

    def neighbours(self, node: MeshNode) -> list[dict[str, Any]]:
        return json.loads(node.ns.ip("-j", "neigh", "show", "dev", self.dev) or "[]")

    def fdb(self, node: MeshNode) -> list[dict[str, Any]]:
        out = _run(["bridge", "-n", node.ns.name, "-j", "fdb", "show", "dev", self.dev]).stdout
        return json.loads(out or "[]")

    def expected(self, node: MeshNode, only: set[str] | None = None) -> dict[str, set[tuple[str, ...]]]:
        """What flannel's backend programs on `node` for the leases now in etcd (facts.md): vxlan —
        routes (subnet, .0, dev, "onlink"), neighbours (.0, mac), fdb (mac, PublicIP); host-gw — routes
        (subnet, PublicIP, "eth0") for the leases whose PublicIP is on eth0's segment (the kernel
        refuses the others). `only`: just for these subnets ("172.30.5.0/24")."""
        want: dict[str, set[tuple[str, ...]]] = {"routes": set(), "neigh": set(), "fdb": set()}
        segment = FAR if ipaddress.IPv4Address(node.address) in FAR else UNDERLAY
        for key, attrs in self.leases().items():
            sn = ipaddress.IPv4Network(key.split("&")[0].replace("-", "/"))
            if str(sn) == node.lease or (only is not None and str(sn) not in only):
                continue
            if self.backend == "vxlan":
                mac = attrs["BackendData"]["VtepMAC"]
                want["routes"].add((str(sn), str(sn.network_address), self.dev, "onlink"))
                want["neigh"].add((str(sn.network_address), mac))
                want["fdb"].add((mac, attrs["PublicIP"]))
            elif ipaddress.IPv4Address(attrs["PublicIP"]) in segment:
                want["routes"].add((str(sn), attrs["PublicIP"], "eth0"))
        return want

    def programmed(self, node: MeshNode) -> dict[str, set[tuple[str, ...]]]:
        """The same shape as expected(), read from the node's kernel (only the overlay's entries)."""
        network = ipaddress.IPv4Network(self.network)
        got: dict[str, set[tuple[str, ...]]] = {"routes": set(), "neigh": set(), "fdb": set()}
        for r in self.routes(node):
            dst = r.get("dst", "")
            if "/" in dst and ipaddress.IPv4Network(dst).subnet_of(network) and "gateway" in r:
                extra = ("onlink",) if "onlink" in r.get("flags", []) else ()
                got["routes"].add((dst, r["gateway"], r["dev"], *extra))
        if self.backend == "vxlan":
            got["neigh"] = {(n["dst"], n.get("lladdr", "")) for n in self.neighbours(node)
                            if "PERMANENT" in n.get("state", [])}
            got["fdb"] = {(f["mac"], f["dst"]) for f in self.fdb(node) if "dst" in f and f.get("state") == "permanent"}
        return got

    def has_programmed(self, node: MeshNode, only: set[str] | None = None) -> bool:
        """Whether the node's kernel holds everything flannel programs for the leases now in etcd (or
        for the subnets in `only`). More is allowed: like flannel, a changed lease leaves the old
        VtepMAC's fdb entry behind."""
        want, got = self.expected(node, only), self.programmed(node)
        return all(want[kind] <= got[kind] for kind in want)

    def wait_converged(self, timeout: float = 20, only: set[str] | None = None) -> None:
        """Until every node has programmed the leases in etcd, or those of the subnets in `only`."""
        for node in self.nodes:
            try:
                lab.wait_for(lambda node=node: self.has_programmed(node, only), timeout,
                             f"{node.name} to program the leases in etcd")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.diagnose(node, only)}") from None

    def diagnose(self, node: MeshNode, only: set[str] | None = None) -> str:
        """What a failed wait shows: whether flanneld runs and reaches etcd, the node's ARP view of the
        underlay, wanted vs. programmed, and the end of flanneld's log."""
        log = node.log.read_text()[-3000:]
        if node.flanneld is None or node.flanneld.poll() is not None:
            return f"{node.name}'s flanneld exited; its log ends:\n{log}"
        health = self.run_in(node, [sys.executable, "-S", "-c", "import urllib.request; print(urllib.request."
                                    f"urlopen('{self.endpoint}/health', timeout=3).read().decode())"], timeout=20)
        state = f"wanted: {self.expected(node, only)}\nprogrammed: {self.programmed(node)}\n" if node.lease else ""
        return (f"etcd from {node.name}: {health.stdout.strip() or health.stderr.strip()[-300:]}\n"
                f"ping {UNDERLAY_GW}: {self.ping(node, UNDERLAY_GW)}\n{node.name}'s neighbours:\n"
                f"{node.ns.ip('neigh', 'show', 'dev', 'eth0')}{state}{node.name}'s flanneld runs; its log ends:\n{log}")

    def run_in(self, node: MeshNode, argv: list[str], timeout: float = 60, input: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """argv inside the node's namespace, PYTHONPATH=repo, cwd=repo, a minimal PATH (the venv is not on
        it: run the wizard as lab.wizard_argv(...), i.e. this Python's -m wizard); not checked."""
        return subprocess.run(node.ns.prefix() + list(argv), capture_output=True, text=True, timeout=timeout,
                              cwd=lab.REPO, env={**self._env(), **(env or {})}, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def curl_all(self, node: MeshNode, ips: list[str], port: int = POD_PORT, timeout: float = 2.0) -> dict[str, str | None]:
        """HTTP GET http://IP:PORT/ to each IP from inside the node, in parallel: body or None."""
        done = self.run_in(node, [sys.executable, "-S", "-c", CURL, str(port), str(timeout), *ips], timeout=timeout + 15)
        if done.returncode != 0:
            raise RuntimeError(f"curl from {node.name} failed: {done.stderr[-1000:]}")
        return json.loads(done.stdout)

    def curl(self, node: MeshNode, ip: str, port: int = POD_PORT, timeout: float = 2.0) -> str | None:
        """HTTP GET http://IP:PORT/ from inside the node: the body, or None when nothing answered in time."""
        return self.curl_all(node, [ip], port, timeout)[ip]

    def ping(self, node: MeshNode, ip: str, size: int = 56, df: bool = False, timeout: float = 1.0) -> str:
        """One ICMP echo from the node, payload `size` bytes (IP packet = size + 28), DF when `df`:
        answered | silent | too-big (the kernel refused: EMSGSIZE, or a frag-needed came back) |
        unreachable | error ..."""
        done = self.run_in(node, [sys.executable, "-S", "-c", PING, ip, str(size), "1" if df else "0", str(timeout)],
                           timeout=timeout + 15)
        return done.stdout.strip() or f"error {done.stderr.strip()[-300:]}"

    def answers(self, node: MeshNode) -> Path:
        """An answers file for `flannel-wizard check FILE --root node.root` run in the node (run_in):
        the lab's etcd, prefix and network; flanneld's files at their defaults under that root."""
        backend = f"{{type: {self.backend}" + (f", vni: {self.vni}}}" if self.backend == "vxlan" else "}")
        path = self.tmp / node.name / "answers.yaml"
        path.write_text(
            "# the mesh lab's node " + node.name + "\n"
            "version: 1\n"
            "etcd:\n"
            f"  endpoints: [\"{self.endpoint}\"]\n"
            f"  prefix: {self.prefix}\n"
            "  api: v3\n"
            "network:\n"
            f"  cidr: {self.network}\n"
            f"  subnet_len: {self.subnet_len}\n"
            f"  backend: {backend}\n"
            "flanneld:\n"
            "  subnet_file: /run/flannel/subnet.env\n"
            "smoke_test:\n"
            "  enabled: false\n")
        return path

    # ---- faults -----------------------------------------------------------------------------------

    def drop_udp(self, node: MeshNode, port: int = 8472) -> None:
        """iptables in the node: INPUT -p udp --dport PORT -j DROP (the vxlan port blocked by a firewall)."""
        rule = ["INPUT", "-p", "udp", "--dport", str(port), "-j", "DROP"]
        node.ns.exec("iptables", "-w", "5", "-I", *rule)
        self._undo.append(lambda: node.ns.exec("iptables", "-w", "5", "-D", *rule, check=False))

    def underlay_mtu(self, node: MeshNode, mtu: int) -> None:
        """Shrink the MTU of the node's bridge-side veth end (in the underlay or router namespace); the
        node's eth0 keeps 1500, so it sends frames the path then drops in both directions: a path-MTU
        black hole (no ICMP comes back; the bridge just drops)."""
        ns, ifname = node.uplink
        ns.ip("link", "set", ifname, "mtu", str(mtu))
        self._undo.append(lambda: ns.ip("link", "set", ifname, "mtu", "1500"))

    def forward_drop(self, node: MeshNode) -> None:
        """iptables -P FORWARD DROP in the node, no ACCEPT for the flannel network (docker ≥ 1.13's
        policy without flanneld's forward rules): traffic through the node to its pods is dropped."""
        node.ns.exec("iptables", "-w", "5", "-P", "FORWARD", "DROP")
        self._undo.append(lambda: node.ns.exec("iptables", "-w", "5", "-P", "FORWARD", "ACCEPT", check=False))

    def stale_neighbour(self, node: MeshNode, peer: MeshNode, mac: str = "02:00:00:00:de:ad") -> None:
        """Replace node's permanent neighbour for peer's .0 on flannel.<VNI> with a wrong MAC (what a
        peer's lease leaves behind when it comes back with a new VtepMAC the node never heard of)."""
        right = self.leases()[peer.lease.replace("/", "-")]["BackendData"]["VtepMAC"]
        node.ns.ip("neigh", "replace", peer.overlay_ip, "lladdr", mac, "dev", self.dev, "nud", "permanent")
        self._undo.append(lambda: node.ns.ip("neigh", "replace", peer.overlay_ip, "lladdr", right, "dev", self.dev,
                                             "nud", "permanent"))

    def duplicate_public_ip(self, of: MeshNode) -> MeshNode:
        """A new node (its own eth0 address) whose flanneld is started with -public-ip of `of`: as
        flannel's etcd subnet manager does, it finds the lease registered for that PublicIP, reuses it
        and overwrites its VtepMAC. Two nodes now hold one subnet; the other nodes point `of`'s subnet at
        the newcomer's VTEP MAC behind `of`'s address. Not undone by heal(). Returns the new node."""
        taken = {n.address for n in self.nodes}
        address = next(str(a) for a in UNDERLAY.hosts() if int(a) & 255 > 10 and str(a) not in taken)
        node = self._add_node(f"node{len(self.nodes) + 1}", address, public_ip=of.public_ip)
        self._await_lease(node)
        self._add_pods(node)
        self.wait_converged(only={node.lease})
        return node

    def heal(self) -> None:
        """Undo the faults drop_udp, underlay_mtu, forward_drop and stale_neighbour made, newest first."""
        while self._undo:
            self._undo.pop()()

    # ---- bench ------------------------------------------------------------------------------------

    def add_fake_leases(self, count: int = 47) -> list[FakeLease]:
        """See add_fake_leases()."""
        return add_fake_leases(self, count)

    def remove_fake_lease(self, fake: FakeLease) -> None:
        """Delete a bench lease from etcd (as its TTL running out would): the nodes' flanneld remove it."""
        assert self.etcd is not None
        self.etcd.ctl("del", f"{self.prefix}/subnets/{fake.subnet.replace('/', '-')}")
        self.fakes.remove(fake)

    # ---- cleanup ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process, delete every namespace (their veths and bridges go with them), stop etcd,
        remove the tmp dir; each part is tried even when another fails."""
        for node in self.nodes:
            for proc in ([node.flanneld] if node.flanneld else []) + node.servers:
                _stop(proc)
        for ns in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                ns.delete()
        if self.etcd is not None:
            with contextlib.suppress(Exception):
                self.etcd.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _pin(ns: lab.Netns, bridge: str, mac: str, mtu: int = 1500) -> None:
    """Set a bridge's MAC and MTU by hand, so they stop following its ports. Left alone, a bridge takes
    the lowest MAC of its ports: a node joining later changes it, and nodes that cached the old one in
    ARP lose the bridge's address until the entry goes stale (half a minute). Its MTU follows its
    smallest port's (underlay_mtu shrinks one); setting it to the value it already has does not count
    (the kernel skips a no-op change), so go through mtu - 1."""
    ns.ip("link", "set", bridge, "address", mac)
    ns.ip("link", "set", bridge, "mtu", str(mtu - 1))
    ns.ip("link", "set", bridge, "mtu", str(mtu))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (each process here is a session leader), then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def add_fake_leases(mesh: MeshLab, count: int = 47) -> list[FakeLease]:
    """Bench: `count` more leases in etcd (3 real nodes + 47 = a 50-node cluster), each with a PublicIP
    that is an extra address on the underlay bridge (192.168.64.100 and up: it answers ARP and ping,
    nothing else) and, for vxlan, a made-up VtepMAC; waits until every real node has programmed them."""
    assert mesh.underlay is not None and mesh.etcd is not None
    if count > 254 - FAKE_FIRST:
        raise ValueError(f"at most {254 - FAKE_FIRST} fake leases fit on the underlay")
    used = {k.split("&")[0] for k in mesh.leases()}
    network = ipaddress.IPv4Network(mesh.network)
    free = [sn for sn in list(network.subnets(new_prefix=mesh.subnet_len))[1:]
            if f"{sn.network_address}-{mesh.subnet_len}" not in used]
    start = mesh.fakes_made
    mesh.fakes_made += count
    made: list[FakeLease] = []
    lease_id = mesh.etcd.ctl("lease", "grant", str(24 * 3600)).stdout.split()[1]
    addrs: list[str] = []
    puts: list[tuple[str, str]] = []
    for k in range(count):
        n = start + k
        public_ip = str(UNDERLAY.network_address + FAKE_FIRST + n)
        mac = f"02:fa:4e:00:{n >> 8:02x}:{n & 255:02x}" if mesh.backend == "vxlan" else None
        sn = free[k]
        data = {"VNI": mesh.vni, "VtepMAC": mac} if mac else None
        value = json.dumps({"PublicIP": public_ip, "PublicIPv6": None, "BackendType": mesh.backend,
                            "BackendData": data}, separators=(",", ":"))
        key = f"{mesh.prefix}/subnets/{sn.network_address}-{mesh.subnet_len}"
        puts.append((key, value))
        addrs.append(f"addr add {public_ip}/{UNDERLAY.prefixlen} dev br0")
        made.append(FakeLease(str(sn), public_ip, mac))
    _run(["ip", "-n", mesh.underlay.name, "-batch", "-"], input="\n".join(addrs) + "\n")
    for key, value in puts:  # etcdctl has no batch mode; one put each
        mesh.etcd.ctl("put", f"--lease={lease_id}", key, value)
    mesh.fakes += made
    mesh.wait_converged(timeout=30, only={f.subnet for f in made})
    return made


@contextlib.contextmanager
def mesh_lab(nodes: int = 3, backend: str = "vxlan", vni: int = 1, network: str = "172.30.0.0/16",
             subnet_len: int = 24, off_segment: int = 0, prefix: str = PREFIX, pods: int = 1) -> Iterator[MeshLab]:
    """A converged mesh of `nodes` nodes (the last `off_segment` of them behind a router, for host-gw's
    not-on-one-segment failure), `pods` pods on each (<lease .2> and up); removed on exit, whatever
    happened."""
    if backend not in ("vxlan", "host-gw"):
        raise ValueError("the lab's flanneld stand-in runs vxlan or host-gw")
    mesh = MeshLab(backend, vni, network, subnet_len, prefix)
    try:
        mesh._build(nodes, off_segment, pods)
        yield mesh
    finally:
        mesh.close()
