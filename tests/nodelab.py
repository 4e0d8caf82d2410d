"""A whole test node: a network namespace with docker0 on docker's default network, a real etcd on
its loopback at the default port (so config.example.yaml works unchanged), and a --root holding the
files an operator's node starts with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests import lab

SEED_ENV = (
    "# Flanneld configuration options\n"
    'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:4001"\n'
    'FLANNEL_ETCD_PREFIX="/kube-centos/network"\n'
    "# Any additional options that you want to pass\n"
    '#FLANNEL_OPTIONS=""\n'
)
SEED_DAEMON_JSON = '{\n  "log-driver": "journald",\n  "exec-opts": ["native.cgroupdriver=systemd"]\n}\n'
SEED_KUBELET = (
    "# kubelet configuration, as kubeadm wrote it\n"
    "apiVersion: kubelet.config.k8s.io/v1beta1\n"
    "kind: KubeletConfiguration\n"
    "cgroupDriver: cgroupfs  # the flag default\n"
    "clusterDNS:\n"
    "- 10.254.0.10\n"
)
IGNORE = "FileExisting-flanneld,FileExisting-dockerd,FileExisting-kubelet"
# what the wizard leaves behind on purpose (its journal) and what flanneld writes (its lease file,
# and /run, which it creates on a root that has none)
NOT_OURS = ("var/lib/flannel-wizard", "run/flannel")
FLANNELD_DIRS = ("run",)


@dataclass
class LabNode:
    ns: lab.Netns
    etcd: lab.Etcd
    root: Path
    env: dict[str, str]

    def bridge(self) -> dict:
        data = json.loads(self.ns.ip("-j", "addr", "show", "docker0"))[0]
        return {"mtu": data["mtu"], "ipv4": [f"{a['local']}/{a['prefixlen']}" for a in data["addr_info"] if a["family"] == "inet"]}

    def snapshot(self, mtimes: bool = False) -> dict[str, object]:
        out: dict[str, object] = {}
        for path in sorted(self.root.rglob("*")):
            rel = str(path.relative_to(self.root))
            if rel.startswith(NOT_OURS) or rel in FLANNELD_DIRS:
                continue
            st = path.stat()
            if path.is_dir():
                out[rel + "/"] = oct(st.st_mode & 0o7777)
            else:
                out[rel] = (path.read_bytes(), oct(st.st_mode & 0o7777)) + ((st.st_mtime_ns,) if mtimes else ())
        return out

    def subnet_env(self) -> dict[str, str]:
        text = (self.root / "run/flannel/subnet.env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines())


def seed_root(root: Path) -> None:
    (root / "etc/sysconfig").mkdir(parents=True)
    (root / "etc/sysconfig/flanneld").write_text(SEED_ENV)
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text(SEED_DAEMON_JSON)
    (root / "var/lib/kubelet").mkdir(parents=True)
    (root / "var/lib/kubelet/config.yaml").write_text(SEED_KUBELET)
    os.chmod(root / "etc/docker/daemon.json", 0o640)


def make_node(env: dict[str, str]) -> LabNode:
    ns = lab.Netns()
    try:
        ns.ip("link", "add", "docker0", "type", "bridge")
        ns.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
        ns.ip("link", "set", "docker0", "up")
        etcd = lab.Etcd(netns=ns, port=2379)
    except BaseException:
        ns.delete()
        raise
    root = Path(env["FW_TEST_ROOT"])
    seed_root(root)
    return LabNode(ns, etcd, root, env)
