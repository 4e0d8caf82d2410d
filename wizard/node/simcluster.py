"""The demo's Kubernetes: answers the kubectl calls the smoke step makes, plays kube-proxy (its
iptables rules, chain names by kube-proxy's own hash) and the pods (HTTP answers naming the pod),
so the smoke test runs on the simulated node without a cluster or any traffic leaving the process.

The cluster's nodes come from the scenario:

  cluster:
    nodes:                                   # the first is this node (its address: public_ip)
      - {name: node-a, address: 192.168.56.11}
      - {name: node-b, address: 192.168.56.10}   # its pods take IPs from the lease with this PublicIP

With two or more, pods are placed as the scheduler would from the Deployment alone: one per node when
its template has a pod anti-affinity on its own labels by kubernetes.io/hostname (a required one leaves
the pods beyond one per node Pending), all on this node without one. A pod on a node whose lease
belongs to a `mesh: {peers}` entry that is down, firewalled (udp_blocked / udp_rejected) or has its
docker0 off its lease (bridge: false) never answers HTTP: the overlay to it is broken. Without
`cluster:`, one node (node-1, this node) and the pods placed as before: one per lease in turn.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.node.commands import Result

if TYPE_CHECKING:
    from wizard.node.simulated import SimulatedNode

SERVER_VERSION = {"major": "1", "minor": "28", "gitVersion": "v1.28.4"}
CLUSTER_IP = "10.254.124.145"  # the article's
NODE_PORT = 30554
HOSTNAME = "kubernetes.io/hostname"
DEFAULT_NODE = "node-1"


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


class SimCluster:
    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.pods_ready_at = 0.0
        self.turn = itertools.count()

    # ------------------------------------------------------------ kubectl

    def kubectl(self, argv: tuple[str, ...], input: str | None) -> Result:
        words = [w for w in argv[1:] if not w.startswith("--request-timeout")]
        if "--kubeconfig" in words:
            i = words.index("--kubeconfig")
            del words[i:i + 2]
        verb, rest = (words[0], words[1:]) if words else ("", [])
        ns = rest[rest.index("-n") + 1] if "-n" in rest else "default"
        if verb == "version":
            return self._ok(argv, {"clientVersion": SERVER_VERSION, "serverVersion": SERVER_VERSION})
        if verb == "create":
            return self._create(argv, json.loads(input or "{}"))
        if verb == "get" and rest and rest[0] == "pods,endpoints":
            return self._ok(argv, {"apiVersion": "v1", "kind": "List", "items": self._pods(ns) + self._endpoints(ns)})
        if verb == "get" and rest and rest[0] == "nodes":
            return self._ok(argv, {"apiVersion": "v1", "kind": "List", "items": self._node_objects()})
        if verb == "get":
            found = [self.objects[key] for key in self._named(rest, ns) if key in self.objects]
            return self._ok(argv, {"apiVersion": "v1", "kind": "List", "items": found} if found else None)
        if verb == "delete":
            for key in self._named(rest, ns):
                self.objects.pop(key, None)
            return Result(argv, 0, "deleted\n", "")
        return Result(argv, 1, "", f"error: the demo's cluster does not know `kubectl {verb}`")

    @staticmethod
    def _ok(argv: tuple[str, ...], data: dict[str, Any] | None) -> Result:
        return Result(argv, 0, json.dumps(data) if data is not None else "", "")

    @staticmethod
    def _named(rest: list[str], ns: str) -> list[tuple[str, str, str]]:
        kinds = {"deployment": "Deployment", "service": "Service"}
        out = []
        for word in rest:
            if "/" in word and not word.startswith("-"):
                kind, name = word.split("/", 1)
                out.append((kinds.get(kind, kind), ns, name))
        return out

    def _create(self, argv: tuple[str, ...], data: dict[str, Any]) -> Result:
        items = data.get("items", [data])
        for item in items:
            meta = item["metadata"]
            if item["kind"] == "Service":
                item["spec"]["clusterIP"] = CLUSTER_IP
                item["spec"]["ports"][0]["nodePort"] = NODE_PORT
            self.objects[(item["kind"], meta.get("namespace", "default"), meta["name"])] = item
        self.pods_ready_at = time.monotonic() + float(self.node.scenario.get("delays", {}).get("pods", 2.0)) / self.node.clock.speed
        return self._ok(argv, {"apiVersion": "v1", "kind": "List", "items": items})

    # ------------------------------------------------------------ nodes and where the pods land

    def _nodes(self) -> list[tuple[str, str]]:
        """(name, address) of the scenario's nodes; this node first."""
        listed = (self.node.scenario.get("cluster") or {}).get("nodes") or []
        if listed:
            return [(str(n["name"]), str(n["address"])) for n in listed]
        return [(DEFAULT_NODE, str(self.node.scenario.get("public_ip", "127.0.0.1")))]

    def _node_objects(self) -> list[dict[str, Any]]:
        return [{"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": name, "labels": {HOSTNAME: name}},
                 "spec": {},
                 "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                            "addresses": [{"type": "InternalIP", "address": address},
                                          {"type": "Hostname", "address": name}]}}
                for name, address in self._nodes()]

    def _subnets(self) -> tuple[ipaddress.IPv4Network | None, dict[str, ipaddress.IPv4Network]]:
        """This node's FLANNEL_SUBNET, and every lease's subnet by its PublicIP."""
        text = self.node.files.read_text("/run/flannel/subnet.env")
        mine = flannel.parse_env(text).get("FLANNEL_SUBNET") if text else None
        by_public: dict[str, ipaddress.IPv4Network] = {}
        for key, value in self.node.flanneld_store().list(""):  # the leases are where this node's flanneld keeps them
            lease = flannel.parse_lease_key(key) if "/subnets/" in key else None
            if lease is not None and lease.subnet is not None:
                try:
                    public = json.loads(value).get("PublicIP")
                except (ValueError, AttributeError):
                    public = None
                if public:
                    by_public.setdefault(str(public), lease.subnet)
        return (ipaddress.IPv4Interface(mine).network if mine else None), by_public

    def _pod_ips(self) -> list[str]:
        """One pod on this node's subnet, the next on another node's lease, as a scheduler would spread them."""
        subnets = []
        mine, by_public = self._subnets()
        if mine:
            subnets.append(mine)
        subnets += [net for net in by_public.values() if net not in subnets]
        subnets = subnets or [ipaddress.IPv4Network("172.30.1.0/24")]
        return [str(subnets[i % len(subnets)].network_address + 2 + i // len(subnets)) for i in range(50)]

    def _placed(self, spec: dict[str, Any]) -> list[tuple[str | None, str | None]]:
        """(node, pod IP) of each replica. Node None: unschedulable; IP None: the node has no lease."""
        replicas = spec["replicas"]
        if not (self.node.scenario.get("cluster") or {}).get("nodes"):
            # no nodes in the scenario: the demo's placement from before it knew nodes, one pod per lease in
            # turn; only a pod on this node's subnet is known to be on this node
            mine, _ = self._subnets()
            return [(DEFAULT_NODE if mine and ipaddress.IPv4Address(ip) in mine else None, ip)
                    for ip in self._pod_ips()[:replicas]]
        nodes = self._nodes()
        spread = _anti_affinity(spec["template"])
        if spread is None or len(nodes) < 2:
            names: list[str | None] = [nodes[0][0]] * replicas
        else:
            names = [nodes[i % len(nodes)][0] if i < len(nodes) or spread == "preferred" else None
                     for i in range(replicas)]
        mine, by_public = self._subnets()
        address = dict(nodes)
        public_ip = str(self.node.scenario.get("public_ip", ""))
        taken: dict[str, int] = {}
        out: list[tuple[str | None, str | None]] = []
        for name in names:
            if name is None:
                out.append((None, None))
                continue
            net = mine if address[name] == public_ip else by_public.get(address[name])
            k = taken[name] = taken.get(name, -1) + 1
            out.append((name, str(net.network_address + 2 + k) if net is not None else None))
        return out

    def _pods(self, ns: str) -> list[dict[str, Any]]:
        pods = []
        ready = time.monotonic() >= self.pods_ready_at
        address = dict(self._nodes())
        for (kind, space, name), item in self.objects.items():
            if kind != "Deployment" or space != ns:
                continue
            spec = item["spec"]
            for i, (node, ip) in enumerate(self._placed(spec)):
                running = ready and ip is not None
                status: dict[str, Any] = {
                    "phase": "Running" if running else "Pending",
                    "conditions": [{"type": "Ready", "status": "True" if running else "False"}],
                    "containerStatuses": [] if running else [
                        {"state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}]}
                pod_spec: dict[str, Any] = {}
                if ip is not None:
                    status["podIP"] = ip
                if node is None and (self.node.scenario.get("cluster") or {}).get("nodes"):
                    n = len(address)
                    status["containerStatuses"] = []
                    status["conditions"].append({
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": f"0/{n} nodes are available: {n} node(s) didn't match pod anti-affinity rules."})
                elif node is not None:
                    pod_spec["nodeName"] = node
                    status["hostIP"] = address[node]
                pods.append({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{name}-5d9c8f7b6-{'abcdefgh'[i % 8]}x{i}", "namespace": ns,
                                 "labels": spec["template"]["metadata"]["labels"]},
                    "spec": pod_spec,
                    "status": status,
                })
        return pods

    def _endpoints(self, ns: str) -> list[dict[str, Any]]:
        out = []
        for (kind, space, name), item in self.objects.items():
            if kind != "Service" or space != ns:
                continue
            ready = [p for p in self._pods(ns) if p["status"]["phase"] == "Running"]
            port = item["spec"]["ports"][0]
            subsets = [{"addresses": [{"ip": p["status"]["podIP"], "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]},
                                       **({"nodeName": p["spec"]["nodeName"]} if p["spec"].get("nodeName") else {})}
                                      for p in ready],
                        "ports": [{"port": port["targetPort"], "protocol": "TCP"}]}] if ready else []
            out.append({"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns, "labels": item["metadata"].get("labels", {})},
                        "subsets": subsets})
        return out

    # ------------------------------------------------------------ kube-proxy and the pods

    def iptables_save(self, argv: tuple[str, ...]) -> Result:
        counters = "-c" in argv
        lines = ["# Generated by iptables-save v1.8.9 (the demo's kube-proxy)", "*nat", ":KUBE-SERVICES - [0:0]",
                 ":KUBE-NODEPORTS - [0:0]"]
        for (kind, ns, name), item in self.objects.items():
            if kind != "Service":
                continue
            endpoints = [f"{a['ip']}:{s['ports'][0]['port']}" for e in self._endpoints(ns) if e["metadata"]["name"] == name
                         for s in e["subsets"] for a in s["addresses"]]
            if not endpoints:
                continue
            svc_name = f"{ns}/{name}"
            svc = "KUBE-SVC-" + _hash(svc_name + "tcp")
            ext = "KUBE-EXT-" + _hash(svc_name + "tcp")
            port = item["spec"]["ports"][0]
            lines.append(f'-A KUBE-SERVICES -d {CLUSTER_IP}/32 -p tcp -m comment --comment "{svc_name} cluster IP" '
                         f"-m tcp --dport {port['port']} -j {svc}")
            lines.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{svc_name}" -m tcp --dport {NODE_PORT} -j {ext}')
            lines.append(f'-A {ext} -m comment --comment "masquerade traffic for {svc_name} external destinations" '
                         "-j KUBE-MARK-MASQ")
            lines.append(f"-A {ext} -j {svc}")
            for i, ep in enumerate(endpoints):
                sep = "KUBE-SEP-" + _hash(svc_name + "tcp" + ep)
                prob = f" -m statistic --mode random --probability {1 / (len(endpoints) - i):0.11f}" \
                    if i < len(endpoints) - 1 else ""
                lines.append(f'-A {svc} -m comment --comment "{svc_name} -> {ep}"{prob} -j {sep}')
                lines.append(f'-A {sep} -p tcp -m comment --comment "{svc_name}" -m tcp -j DNAT --to-destination {ep}')
        lines.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
                     'last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
        lines.append("COMMIT")
        if counters:
            lines = [("[0:0] " + line) if line.startswith("-A ") else line for line in lines]
        return Result(argv, 0, "\n".join(lines) + "\n", "")

    def http_get(self, url: str, timeout: float) -> tuple[bool, str]:
        self.node.clock.wait("http")
        smoke = self.node.scenario.get("smoke", {})
        if smoke.get("fails"):
            time.sleep(min(timeout, 0.2 / self.node.clock.speed))
            return False, "timed out"
        endpoints = [a["ip"] for e in self._endpoints("default") for s in e["subsets"] for a in s["addresses"]]
        host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        if host in endpoints:  # straight to a pod, without kube-proxy
            ip = host
        elif not endpoints:
            return False, "[Errno 111] Connection refused"
        else:
            ip = endpoints[next(self.turn) % len(endpoints)]
        if ip in self._cut_off():
            time.sleep(min(timeout, 0.2 / self.node.clock.speed))
            return False, "timed out"
        return True, f"<title>Welcome to nginx!</title> (the demo's pod {ip})"

    def _cut_off(self) -> set[str]:
        """Pod IPs on the leases of `mesh: {peers}` the overlay does not reach (see the module's docstring)."""
        peers = (self.node.scenario.get("mesh") or {}).get("peers") or []
        broken = {str(p.get("public_ip")) for p in peers
                  if p.get("down") or p.get("udp_blocked") or p.get("udp_rejected") or p.get("bridge") is False}
        if not broken:
            return set()
        _, by_public = self._subnets()
        nets = [net for public, net in by_public.items() if public in broken]
        return {p["status"]["podIP"] for p in self._pods("default") if p["status"].get("podIP")
                and any(ipaddress.IPv4Address(p["status"]["podIP"]) in net for net in nets)}


def _anti_affinity(template: dict[str, Any]) -> str | None:
    """'required' or 'preferred' when the pod template keeps its pods on separate hostnames, else None."""
    labels = template.get("metadata", {}).get("labels", {})
    anti = ((template.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}

    def spreads(term: dict[str, Any]) -> bool:
        match = (term.get("labelSelector") or {}).get("matchLabels") or {}
        return term.get("topologyKey") == HOSTNAME and bool(match) and all(labels.get(k) == v for k, v in match.items())

    if any(spreads(t) for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
        return "required"
    if any(spreads(t.get("podAffinityTerm") or {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        return "preferred"
    return None
