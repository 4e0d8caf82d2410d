"""The smoke step end to end: the real `kubectl` against the API stand-in (which also plays
kube-proxy, loading real nat rules), pods that are real HTTP servers in namespaces, and the wizard
run inside the node namespace. Also: pods that never get ready, a 403, a slow API server, a name
that belongs to somebody else, and no cluster at all."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.podlab import NODE_ADDRESS, PODS, Cluster, make_cluster

API_PORT = 6443


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from make_cluster(rules=False)  # kube-proxy's rules come from the API stand-in


class Smoke:
    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self.cluster = cluster
        self.tmp = tmp
        self.root = tmp / "root"
        (self.root / "etc/kubernetes").mkdir(parents=True)
        (self.root / "run/flannel").mkdir(parents=True)
        (self.root / "run/flannel/subnet.env").write_text(
            "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.38.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n")
        (self.root / "etc/kubernetes/admin.conf").write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
            f"clusters: [{{name: lab, cluster: {{server: 'http://127.0.0.1:{API_PORT}'}}}}]\n"
            "contexts: [{name: lab, context: {cluster: lab, user: lab}}]\nusers: [{name: lab, user: {}}]\n")
        self.api: subprocess.Popen[str] | None = None
        self.etcd = lab.Etcd(netns=cluster.node, port=2379)
        self.etcd.ctl("put", "/kube-centos/network/subnets/172.30.38.0-24",
                      '{"PublicIP":"192.168.56.11","BackendType":"vxlan"}')

    def start_api(self, mode: str = "normal", ready_after: float = 0.0, proxy_mode: str = "iptables") -> None:
        argv = self.cluster.node.prefix() + [sys.executable, str(lab.STANDINS / "kubeapi.py"), "--port", str(API_PORT),
                                             "--pod-ips", ",".join(PODS), "--mode", mode, "--kube-proxy",
                                             "--ready-after", str(ready_after), "--proxy-mode", proxy_mode,
                                             "--node-port-ips", NODE_ADDRESS]
        self.api = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.api.stdout is not None and self.api.stdout.readline().strip() == "listening"

    def run(self, extra: str = "", timeout_s: float = 10) -> tuple[int, list[dict], float]:
        answers = self.tmp / "answers.yaml"
        answers.write_text(
            "version: 1\nsmoke_test:\n  kubeconfig: /etc/kubernetes/admin.conf\n  container_port: 8080\n"
            f"  timeout_s: {timeout_s}\n" + extra)
        argv = self.cluster.node.prefix() + lab.wizard_argv("apply", str(answers), "--only", "smoke", "--yes",
                                                            "--root", str(self.root), "--output", "json")
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=lab.REPO, stdin=subprocess.DEVNULL,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.tmp),
                                   "PYTHONPATH": str(lab.REPO)})
        took = time.monotonic() - started
        assert "Traceback" not in done.stderr, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        return done.returncode, [e for e in lines if "result" not in e], took

    def close(self) -> None:
        if self.api is not None:
            self.api.kill()
            self.api.communicate()
        self.etcd.close()


@pytest.fixture
def smoke(cluster: Cluster, tmp_path: Path) -> Iterator[Smoke]:
    made = Smoke(cluster, tmp_path)
    try:
        yield made
    finally:
        made.close()


def substeps(events: list[dict]) -> dict[str, dict]:
    """The final event of each sub-step, by title."""
    out = {}
    for e in events:
        if e["kind"] == "substep" and e["status"] != "running":
            out[e["substep"]["title"]] = e
    return out


def test_smoke_test_passes_through_real_kube_proxy_rules(smoke: Smoke) -> None:
    smoke.start_api()
    code, events, took = smoke.run()
    subs = substeps(events)
    assert code == 0, json.dumps(events, indent=1)[-3000:]
    assert list(subs) == ["cluster reachable", "deploy", "expose", "endpoints ready", "pod network",
                          "kube-proxy rules", "traffic", "cleanup"]
    assert subs["cluster reachable"]["message"] == "1/8 cluster reachable: API server v1.28.4"
    assert subs["expose"]["message"].endswith("cluster IP 10.254.124.145:8080, node port 30554")
    assert subs["endpoints ready"]["message"].endswith("2/2 ready: 172.30.38.2:8080, 172.30.38.3:8080")
    assert "2 on this node's FLANNEL_SUBNET 172.30.38.1/24" in subs["pod network"]["message"]
    assert "172.30.38.2: node subnet 172.30.38.0/24 (192.168.56.11)" in subs["pod network"]["detail"]
    # the article's chain names, from the stand-in kube-proxy's rules, traced by jumps
    assert "KUBE-SVC-BR4KARPIGKMRMN3E" in subs["kube-proxy rules"]["detail"]
    assert "→ DNAT 172.30.38.3:8080" in subs["kube-proxy rules"]["detail"]
    assert subs["traffic"]["status"] == "ok" and "12 of 12 requests answered" in subs["traffic"]["message"]
    assert subs["cleanup"]["message"] == "8/8 cleanup: deleted deployment/nginx and service/example-service"
    steps = [e for e in events if e["kind"] == "step" and e["step"] == "smoke" and e["status"] != "running"]
    print(f"smoke step: {steps[-1]['elapsed']:.2f}s in the step, {took:.2f}s for the whole process")
    assert steps[-1]["elapsed"] < 2.0  # pods ready at once: all of it is the step's own overhead


def test_smoke_test_passes_with_kube_proxy_in_nftables_mode(smoke: Smoke) -> None:
    """kube-proxy's ConfigMap says nftables, and its table is the only one: sub-step 6 traces it, and
    sub-step 7's traffic goes through nft's numgen and DNAT; the Smoke page's tree comes in the event."""
    smoke.start_api(proxy_mode="nftables")
    code, events, _ = smoke.run()
    subs = substeps(events)
    assert code == 0, json.dumps(events, indent=1)[-3000:]
    rules = subs["kube-proxy rules"]
    assert rules["message"] == "6/8 kube-proxy rules: kube-proxy routes default/example-service to 2 endpoint(s) " \
                               "(nftables mode)"
    assert rules["tree"]["label"] == "default/example-service  (kube-proxy nftables mode)"
    ways = [child["label"] for child in rules["tree"]["children"]]
    assert ways[0].startswith("cluster IP 10.254.124.145:8080/tcp  (map service-ips, line ")
    assert ways[1].startswith("node port 30554/tcp  (map service-nodeports, line ")
    assert "→ DNAT 172.30.38.3:8080" in rules["detail"] and "KUBE-SVC-" not in rules["detail"]
    assert subs["traffic"]["status"] == "ok" and "12 of 12 requests answered" in subs["traffic"]["message"]
    assert subs["cleanup"]["status"] == "ok"


def test_pods_that_never_get_ready_are_named_with_the_reason(smoke: Smoke) -> None:
    smoke.start_api(mode="pending")
    code, events, _ = smoke.run(timeout_s=2)
    subs = substeps(events)
    assert code == 1
    ready = subs["endpoints ready"]
    assert ready["status"] == "failed" and ready["message"] == "4/8 endpoints ready: 0/2 ready after 2s"
    assert 'nginx-7c5ddbdf54-00000: Pending — ImagePullBackOff: Back-off pulling image "nginx:1.9"' in ready["detail"]
    progress = [e["message"] for e in events if e["kind"] == "substep" and e["status"] == "running"]
    assert "4/8 endpoints ready: 0/2 ready" in progress
    assert subs["traffic"]["status"] == "skipped"
    assert subs["cleanup"]["status"] == "ok"  # what it created is gone even so


def test_a_403_from_the_api_server(smoke: Smoke) -> None:
    smoke.start_api(mode="forbidden")
    code, events, _ = smoke.run()
    failed = [e for e in events if e["kind"] == "step" and e["status"] == "failed"]
    assert code == 1 and failed and failed[0]["step"] == "smoke"
    assert "Error from server (Forbidden)" in failed[0]["message"]


def test_a_slow_api_server_still_passes(smoke: Smoke) -> None:
    smoke.start_api(mode="slow")
    code, events, _ = smoke.run()
    assert code == 0, [e["message"] for e in events if e["status"] == "failed"]


def test_a_name_that_belongs_to_somebody_else_is_not_touched(smoke: Smoke) -> None:
    smoke.start_api()
    foreign = '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","labels":{"team":"web"}},' \
              '"spec":{"replicas":1,"selector":{"matchLabels":{"team":"web"}},"template":{"metadata":{"labels":' \
              '{"team":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}'
    kubeconfig = str(smoke.root / "etc/kubernetes/admin.conf")
    subprocess.run(smoke.cluster.node.prefix() + ["kubectl", "--kubeconfig", kubeconfig, "create", "-f", "-",
                                                  "--validate=false"], input=foreign, text=True, check=True,
                   capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(smoke.tmp)})
    code, events, _ = smoke.run()
    assert code == 1
    # refused while planning: nothing is created, so there is nothing to clean up
    failed = [e for e in events if e["kind"] == "step" and e["status"] == "failed"]
    assert failed[0]["message"] == ("deployment nginx already exists in default "
                                    "and was not created by flannel-wizard; refusing to touch it")
    assert failed[0]["detail"].endswith("nothing was changed")
    assert "deploy" not in substeps(events) and not [e for e in events if e["kind"] == "change"]
    # and a second run of the wizard's own objects replaces them
    subprocess.run(smoke.cluster.node.prefix() + ["kubectl", "--kubeconfig", kubeconfig, "delete", "deployment/nginx"],
                   check=True, capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(smoke.tmp)})
    code, events, _ = smoke.run("  cleanup: false\n")
    assert code == 0
    # kept: the explainer names each endpoint's pod and node when it may ask the API server
    explained = subprocess.run(smoke.cluster.node.prefix() + lab.wizard_argv(
        "explain-service", "example-service", "--kubeconfig", kubeconfig, "--answers", str(smoke.tmp / "answers.yaml")),
        capture_output=True, text=True,
        cwd=lab.REPO, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(smoke.tmp), "PYTHONPATH": str(lab.REPO)})
    assert explained.returncode == 0, explained.stderr
    assert ("→ DNAT 172.30.38.2:8080  [pod nginx-7c5ddbdf54-00000 on node-1, node subnet 172.30.38.0/24 "
            "(192.168.56.11)]") in explained.stdout
    code, events, _ = smoke.run()
    notes = [e["message"] for e in events if e["kind"] == "note"]
    assert code == 0 and "replaces the wizard's earlier deployment/nginx and service/example-service" in notes


def test_no_cluster_at_all(smoke: Smoke) -> None:
    code, events, _ = smoke.run()
    cluster = substeps(events)["cluster reachable"]
    assert code == 1 and cluster["status"] == "failed"
    assert cluster["message"].startswith("1/8 cluster reachable: no Kubernetes API server answered:")
    assert "smoke_test.kubeconfig" in cluster["detail"]
