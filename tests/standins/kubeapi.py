"""Stand-in for a Kubernetes API server (and for kube-proxy on this node), because neither can be
installed on the test machines. The real `kubectl` binary talks to it: discovery documents, then
deployments, services, endpoints and pods in the shapes the real API returns. With --kube-proxy it
also does kube-proxy's job on the same real state: once a service has ready endpoints it loads the
nat rules for it with `iptables-restore` in the namespace it runs in (chain names by kube-proxy's
hash), so the wizard's tracer and its HTTP requests meet real DNAT. --proxy-mode nftables does it the
way kube-proxy's nftables mode does instead: its `table ip kube-proxy`, loaded with `nft -f` (rules from
tests/kubeproxy_nft.py). Either way kube-proxy's ConfigMap (kube-system/kube-proxy) names the mode.

  python tests/standins/kubeapi.py --port P --pod-ips [NODE:]IP,... [--nodes NAME=IP,...]
                                   [--mode normal|pending|forbidden|slow] [--kube-proxy] [--ready-after S]
                                   [--proxy-mode iptables|nftables [--node-port-ips IP,...]]
                                   [--refuse-create RESOURCE]

--refuse-create services answers 403 to creating a service (and only that): a create that half works.

--nodes lists the cluster's nodes (Ready, schedulable, InternalIP as given; default one node, node-1
at 127.0.0.1) for `GET /api/v1/nodes`. A pod IP given as NODE:IP belongs to that node; a bare IP to the
first node. Pods are placed as the scheduler would with only the Deployment to go on: spread one per
node when its pod template has a pod anti-affinity on the pods' own labels by kubernetes.io/hostname
(a required one leaves the pods beyond one per node Pending, as the scheduler does), all on the first
node without one — so a test can tell whether the manifest asked for the spread. The k-th pod on a
node takes that node's k-th pod IP (cycling), and carries spec.nodeName and status.hostIP.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

RESOURCES = {
    "v1": [("pods", "Pod", True), ("services", "Service", True), ("endpoints", "Endpoints", True),
           ("namespaces", "Namespace", False), ("nodes", "Node", False), ("configmaps", "ConfigMap", True)],
    "apps/v1": [("deployments", "Deployment", True)],
}
PATH = re.compile(r"^/(?:api/v1|apis/apps/v1)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")
NODES_PATH = re.compile(r"^/api/v1/nodes(?:/([^/]+))?$")
HOSTNAME = "kubernetes.io/hostname"
REPO = Path(__file__).resolve().parents[2]


def chain_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def parse_nodes(text: str) -> dict[str, str]:
    """'node-a=192.168.64.11,node-b=192.168.64.12' → {name: InternalIP}, in the order given."""
    out = {}
    for word in text.split(","):
        if word:
            name, _, ip = word.partition("=")
            out[name] = ip
    return out


def parse_pod_ips(text: str, nodes: list[str]) -> dict[str, list[str]]:
    """'node-a:172.30.11.2,node-b:172.30.12.2' (or bare IPs: the first node's) → {node: [IP, ...]}."""
    out: dict[str, list[str]] = {name: [] for name in nodes}
    for word in text.split(","):
        if not word:
            continue
        node, _, ip = word.rpartition(":")
        if node and node not in out:
            raise SystemExit(f"--pod-ips: {node} is not in --nodes")
        out[node or nodes[0]].append(ip)
    return out


def anti_affinity(dep: dict) -> str | None:
    """'required' or 'preferred' when the pod template keeps its pods on separate hostnames (a term on
    kubernetes.io/hostname whose matchLabels select the template's own labels), else None."""
    template = dep["spec"]["template"]
    labels = template["metadata"].get("labels", {})
    anti = (template["spec"].get("affinity") or {}).get("podAntiAffinity") or {}

    def spreads(term: dict) -> bool:
        match = (term.get("labelSelector") or {}).get("matchLabels") or {}
        return term.get("topologyKey") == HOSTNAME and bool(match) and all(labels.get(k) == v for k, v in match.items())

    if any(spreads(t) for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
        return "required"
    if any(spreads(t.get("podAffinityTerm") or {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        return "preferred"
    return None


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.nodes = parse_nodes(args.nodes) or {"node-1": "127.0.0.1"}
        self.pod_ips = parse_pod_ips(args.pod_ips, list(self.nodes))
        self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, ns, name)
        self.lock = threading.Lock()
        self.created_at = 0.0
        self.rules_for: str = ""
        # kubeadm's kube-proxy ConfigMap: the mode it runs in ("" is iptables, Linux's default)
        mode = "" if args.proxy_mode == "iptables" else args.proxy_mode
        self.objects[("configmaps", "kube-system", "kube-proxy")] = {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "data": {"config.conf": f"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                                    f"mode: \"{mode}\"\n"}}

    def ready(self) -> bool:
        return self.args.mode != "pending" and time.monotonic() - self.created_at >= self.args.ready_after

    def schedule(self, dep: dict) -> list[str | None]:
        """Each replica's node (None: unschedulable), as the scheduler would place them."""
        names = list(self.nodes)
        replicas = dep["spec"]["replicas"]
        spread = anti_affinity(dep)
        if spread is None:
            return [names[0]] * replicas
        return [names[i % len(names)] if i < len(names) or spread == "preferred" else None for i in range(replicas)]

    def pods(self, ns: str) -> list[dict]:
        out = []
        for (res, space, name), dep in list(self.objects.items()):
            if res != "deployments" or space != ns:
                continue
            labels = dep["spec"]["template"]["metadata"]["labels"]
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            taken: dict[str, int] = {}
            for i, node in enumerate(self.schedule(dep)):
                ready = self.ready() and node is not None and bool(self.pod_ips[node])
                status: dict = {"phase": "Running" if ready else "Pending",
                                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
                spec = {"containers": dep["spec"]["template"]["spec"]["containers"]}
                if node is None:
                    n = len(self.nodes)
                    status["conditions"].append({
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": f"0/{n} nodes are available: {n} node(s) didn't match pod anti-affinity rules. "
                                   f"preemption: 0/{n} nodes are available: {n} No preemption victims found for "
                                   "incoming pod."})
                else:
                    spec["nodeName"] = node
                    status["hostIP"] = self.nodes[node]
                    if ready:
                        k = taken[node] = taken.get(node, -1) + 1
                        status["podIP"] = self.pod_ips[node][k % len(self.pod_ips[node])]
                    else:
                        status["containerStatuses"] = [{"name": name, "ready": False, "restartCount": 0, "state": {
                            "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}}]
                out.append({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": f"{name}-7c5ddbdf54-{i:05d}", "namespace": ns, "labels": labels},
                            "spec": spec, "status": status})
        return out

    def node_objects(self) -> list[dict]:
        """The nodes as the real API gives them: Ready, addresses, the hostname label."""
        return [{"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": name, "labels": {HOSTNAME: name, "kubernetes.io/os": "linux",
                                                       "kubernetes.io/arch": "amd64"}},
                 "spec": {},
                 "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                            "message": "kubelet is posting ready status"}],
                            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                            "nodeInfo": {"kubeletVersion": "v1.28.4", "kubeProxyVersion": "v1.28.4"}}}
                for name, ip in self.nodes.items()]

    def endpoints(self, ns: str) -> list[dict]:
        out = []
        for (res, space, name), svc in list(self.objects.items()):
            if res != "services" or space != ns:
                continue
            selector = svc["spec"].get("selector", {})
            ready = [p for p in self.pods(ns) if p["status"]["phase"] == "Running"
                     and all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())]
            port = svc["spec"]["ports"][0]
            subsets = [{"addresses": [{"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
                                       "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns}}
                                      for p in ready],
                        "ports": [{"port": port["targetPort"], "protocol": "TCP"}]}] if ready else []
            out.append({"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"].get("labels", {})},
                        "subsets": subsets})
        return out

    def sync_kube_proxy(self) -> None:
        """kube-proxy's nat rules for every service with ready endpoints (the article's layout)."""
        if not self.args.kube_proxy:
            return
        if self.args.proxy_mode == "nftables":
            return self.sync_nftables()
        lines = ["*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
                 ":KUBE-POSTROUTING - [0:0]",
                 "-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES", "-A POSTROUTING -j KUBE-POSTROUTING",
                 "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
                 "-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE"]
        for (res, ns, name), svc in list(self.objects.items()):
            if res != "services":
                continue
            eps = [f"{a['ip']}:{s['ports'][0]['port']}" for e in self.endpoints(ns) if e["metadata"]["name"] == name
                   for s in e["subsets"] for a in s["addresses"]]
            if not eps:
                continue
            pn = f"{ns}/{name}:"
            svc_chain = "KUBE-SVC-" + chain_hash(pn + "tcp")
            port = svc["spec"]["ports"][0]
            lines.append(f":{svc_chain} - [0:0]")
            seps = ["KUBE-SEP-" + chain_hash(pn + "tcp" + ep) for ep in eps]
            lines += [f":{sep} - [0:0]" for sep in seps]
            lines.append(f'-A KUBE-SERVICES -d {svc["spec"]["clusterIP"]}/32 -p tcp -m comment --comment "{pn} cluster IP" '
                         f"-m tcp --dport {port['port']} -j {svc_chain}")
            for i, (ep, sep) in enumerate(zip(eps, seps, strict=True)):
                prob = f" -m statistic --mode random --probability {1 / (len(eps) - i):0.11f}" if i < len(eps) - 1 else ""
                lines.append(f'-A {svc_chain} -m comment --comment "{pn}"{prob} -j {sep}')
                lines.append(f'-A {sep} -p tcp -m comment --comment "{pn}" -m tcp -j DNAT --to-destination {ep}')
            lines.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{pn}" -m tcp --dport {port["nodePort"]} -j KUBE-MARK-MASQ')
            lines.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{pn}" -m tcp --dport {port["nodePort"]} -j {svc_chain}')
        lines.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
        lines.append("COMMIT")
        text = "\n".join(lines) + "\n"
        if text != self.rules_for:
            subprocess.run(["iptables-restore"], input=text, text=True, check=True, timeout=10)
            self.rules_for = text


    def sync_nftables(self) -> None:
        """kube-proxy's nftables mode: its whole table for the services with ready endpoints, replaced at
        once (`nft -f` applies a file as one transaction), as kube-proxy's full sync does."""
        if str(REPO) not in sys.path:  # run as a script: the repository's tests package is not on the path
            sys.path.insert(0, str(REPO))
        from tests import kubeproxy_nft as nft

        services = []
        for (res, ns, name), svc in list(self.objects.items()):
            if res != "services":
                continue
            eps = [f"{a['ip']}:{s['ports'][0]['port']}" for e in self.endpoints(ns) if e["metadata"]["name"] == name
                   for s in e["subsets"] for a in s["addresses"]]
            port = svc["spec"]["ports"][0]
            services.append(nft.Service(ns, name, svc["spec"]["clusterIP"], port["port"], eps, port_name="",
                                        node_port=port.get("nodePort")))
        # the addresses node ports answer on: this node's (kube-proxy reads them from its interfaces)
        nodes = {4: [ip for ip in self.args.node_port_ips.split(",") if ip] or ["127.0.0.1"]}
        # the service CIDR kube-proxy drops unallocated cluster IPs in: the cluster's, not the pods'
        text = "add table ip kube-proxy\ndelete table ip kube-proxy\n" + nft.script(
            services, node_ips=nodes, service_cidr={4: "10.254.0.0/16"})
        if text != self.rules_for:
            subprocess.run(["nft", "-f", "-"], input=text, text=True, check=True, timeout=10)
            self.rules_for = text


def make_handler(cluster: Cluster) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def send(self, code: int, obj: dict) -> None:
            if cluster.args.mode == "slow":
                time.sleep(0.3)
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def status(self, code: int, reason: str, message: str) -> None:
            self.send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": message, "reason": reason, "code": code})

        def forbidden(self, verb: str, res: str, ns: str) -> bool:
            if cluster.args.mode != "forbidden":
                return False
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            self.status(403, "Forbidden", f'{res} is forbidden: User "smoke" cannot {verb} resource "{res}" '
                        f'in API group "" {scope}')
            return True

        def do_GET(self) -> None:  # noqa: N802 — http.server's naming
            path, _, query = self.path.partition("?")
            if path == "/version":
                return self.send(200, {"major": "1", "minor": "28", "gitVersion": "v1.28.4"})
            if path == "/api":
                return self.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
            if path == "/apis":
                return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})
            for gv, resources in RESOURCES.items():
                if path == ("/api/v1" if gv == "v1" else f"/apis/{gv}"):
                    return self.send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                           "resources": [{"name": n, "singularName": k.lower(), "namespaced": nsd,
                                                          "kind": k, "verbs": ["create", "delete", "get", "list",
                                                                               "patch", "update", "watch"]}
                                                         for n, k, nsd in resources]})
            nodes = NODES_PATH.match(path)
            if nodes:
                if self.forbidden("list", "nodes", ""):
                    return None
                items = cluster.node_objects()
                if nodes.group(1):
                    found = next((o for o in items if o["metadata"]["name"] == nodes.group(1)), None)
                    if found is None:
                        return self.status(404, "NotFound", f'nodes "{nodes.group(1)}" not found')
                    return self.send(200, found)
                return self.send(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                       "items": items})
            match = PATH.match(path)
            if not match:
                return self.status(404, "NotFound", "the server could not find the requested resource")
            ns, res, name = match.groups()
            if self.forbidden("get", res, ns):
                return None
            with cluster.lock:
                if res == "pods":
                    items = cluster.pods(ns)
                elif res == "endpoints":
                    items = cluster.endpoints(ns)
                else:
                    items = [o for (r, s, _), o in cluster.objects.items() if r == res and s == ns]
                cluster.sync_kube_proxy()
            if name:
                found = next((o for o in items if o["metadata"]["name"] == name), None)
                if found is None:
                    return self.status(404, "NotFound", f'{res} "{name}" not found')
                return self.send(200, found)
            selector = dict(p.split("=", 1) for p in _param(query, "labelSelector").split(",") if "=" in p)
            items = [o for o in items if all(o["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
            kind = {"pods": "PodList", "endpoints": "EndpointsList", "services": "ServiceList",
                    "deployments": "DeploymentList"}.get(res, "List")
            return self.send(200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})

        def do_POST(self) -> None:  # noqa: N802
            match = PATH.match(self.path.partition("?")[0])
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if not match:
                return self.status(404, "NotFound", "no such collection")
            ns, res, _ = match.groups()
            if self.forbidden("create", res, ns):
                return None
            if res in cluster.args.refuse_create:
                self.status(403, "Forbidden", f'{res} is forbidden: User "smoke" cannot create resource "{res}" '
                            f'in API group "" in the namespace "{ns}"')
                return None
            meta = body.setdefault("metadata", {})
            meta.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion="1")
            with cluster.lock:
                key = (res, ns, meta["name"])
                if key in cluster.objects:
                    return self.status(409, "AlreadyExists", f'{res} "{meta["name"]}" already exists')
                if res == "services":
                    body["spec"]["clusterIP"] = "10.254.124.145"
                    body["spec"]["ports"][0]["nodePort"] = 30554
                if res == "deployments":
                    cluster.created_at = time.monotonic()
                cluster.objects[key] = body
            return self.send(201, body)

        def do_DELETE(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))  # DeleteOptions; unread it would spoil keep-alive
            match = PATH.match(self.path.partition("?")[0])
            if not match or not match.group(3):
                return self.status(404, "NotFound", "no such object")
            ns, res, name = match.groups()
            with cluster.lock:
                found = cluster.objects.pop((res, ns, name), None)
                cluster.sync_kube_proxy()
            if found is None:
                return self.status(404, "NotFound", f'{res} "{name}" not found')
            return self.send(200, found)

    return Handler


def _param(query: str, key: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(query).get(key, [""])[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pod-ips", default="")
    parser.add_argument("--nodes", default="", help="NAME=INTERNAL_IP,... (default node-1=127.0.0.1)")
    parser.add_argument("--mode", default="normal", choices=("normal", "pending", "forbidden", "slow"))
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--kube-proxy", action="store_true")
    parser.add_argument("--proxy-mode", default="iptables", choices=("iptables", "nftables"))
    parser.add_argument("--node-port-ips", default="", help="IP,...: where node ports answer (nftables mode)")
    parser.add_argument("--refuse-create", action="append", default=[], metavar="RESOURCE")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Cluster(args)))
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
