"""The units and settings files real packages install, put under a test node's root where they live.

The files in tests/fixtures/units/ are the packages' units and settings files: CentOS 7's flannel 0.7
and docker 1.13 (the article's node), Debian 12's docker.io (copied from the installed package), and
kubeadm's kubelet drop-in with the files `kubeadm init` writes. Scripts of upstream's (mk-docker-opts.sh)
are not kept: tests compare with the bytes facts.md gives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).parent / "fixtures" / "units"
LIB = "usr/lib/systemd/system"

SETS: dict[str, dict[str, str]] = {
    # the flannel package: its unit, its docker drop-in, its env file and its flanneld wrapper
    "centos7-flannel": {
        "centos7/flanneld.service": f"{LIB}/flanneld.service",
        "centos7/flannel.conf": f"{LIB}/docker.service.d/flannel.conf",
        "centos7/flanneld.sysconfig": "etc/sysconfig/flanneld",
        "centos7/flanneld-start": "usr/bin/flanneld-start",
    },
    "centos7-docker": {
        "centos7/docker.service": f"{LIB}/docker.service",
        "centos7/docker.sysconfig": "etc/sysconfig/docker",
    },
    "debian12-docker": {"debian12/docker.service": "lib/systemd/system/docker.service"},
    "kubeadm": {
        "kubeadm/kubelet.service": f"{LIB}/kubelet.service",
        "kubeadm/10-kubeadm.conf": f"{LIB}/kubelet.service.d/10-kubeadm.conf",
        "kubeadm/kubeadm-flags.env": "var/lib/kubelet/kubeadm-flags.env",
        "kubeadm/config.yaml": "var/lib/kubelet/config.yaml",
    },
}


def install(root: Path, *names: str) -> None:
    """Copy the named sets under `root` (a test node's --root)."""
    for name in names:
        for source, target in SETS[name].items():
            path = root / target
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / source, path)


def write(root: Path, path: str, text: str) -> Path:
    """Put one file of `text` at `path` under `root` (directories made), for what no package set holds."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target
