"""apply config.example.yaml on a real namespace + real etcd, then again, then undo."""

from __future__ import annotations

import json

from tests.conftest import run_wizard
from tests.nodelab import IGNORE, SEED_ENV, LabNode

EXPECTED_CONFIG = {"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}



def apply(node: LabNode, *extra: str, file: str = "config.example.yaml"):
    # no API server in this lab: the smoke step has its own tests (test_smoke_step.py)
    return run_wizard("apply", file, "--root", str(node.root), "--yes", "--ignore-preflight-errors", IGNORE,
                      "--skip", "smoke", *extra, env=node.env, netns=node.ns)


def test_apply_twice_then_undo_restores_everything(node: LabNode) -> None:
    before = node.snapshot()
    first = apply(node)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[ ok ] etcd: created /kube-centos/network/config" in first.stdout

    # etcd holds exactly the article's config, written with the v3 API
    assert json.loads(node.etcd.get("/kube-centos/network/config")) == EXPECTED_CONFIG
    subnet = node.subnet_env()
    lease = subnet["FLANNEL_SUBNET"].replace(".1/24", ".0-24")
    assert json.loads(node.etcd.get(f"/kube-centos/network/subnets/{lease}"))["PublicIP"] == "127.0.0.1"

    env = (node.root / "etc/sysconfig/flanneld").read_text()
    assert env == (
        "# Flanneld configuration options\n"
        'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"\n'
        'FLANNEL_ETCD_PREFIX="/kube-centos/network"\n'
        "# Any additional options that you want to pass\n"
        '#FLANNEL_OPTIONS=""\n'
        'FLANNEL_OPTIONS=""\n'
    )
    s, mtu = subnet["FLANNEL_SUBNET"], subnet["FLANNEL_MTU"]
    assert mtu == "1450"
    assert (node.root / "run/docker_opts.env").read_text() == (
        f'DOCKER_OPT_BIP="--bip={s}"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        f'DOCKER_OPTS=" --bip={s} --ip-masq=true --mtu=1450"\n'
    )
    daemon = json.loads((node.root / "etc/docker/daemon.json").read_text())
    # docker said systemd, kubelet cgroupfs: PID 1 is not systemd here, so both become cgroupfs
    assert daemon == {"log-driver": "journald", "exec-opts": ["native.cgroupdriver=cgroupfs"], "bip": s, "mtu": 1450}
    assert oct((node.root / "etc/docker/daemon.json").stat().st_mode & 0o777) == "0o640"
    assert 'kubelet cgroup driver: "cgroupfs" is different from docker cgroup driver: "systemd"' in first.stdout
    assert "cgroupDriver: cgroupfs  # the flag default" in (node.root / "var/lib/kubelet/config.yaml").read_text()
    assert node.bridge() == {"mtu": 1450, "ipv4": [s]}
    log = (node.root.parent / "standin.log").read_text()
    assert log.index("restart flanneld") < log.index("restart docker") < log.index("restart kubelet")

    # the same answers again: nothing to do, nothing touched
    settled = node.snapshot(mtimes=True)
    second = apply(node)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "done: 0 change(s)" in second.stdout
    assert node.snapshot(mtimes=True) == settled
    assert node.bridge() == {"mtu": 1450, "ipv4": [s]}

    undone = run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert node.snapshot() == before
    assert (node.root / "etc/sysconfig/flanneld").read_text() == SEED_ENV
    assert node.etcd.get("/kube-centos/network/config") is None
    assert node.bridge() == {"mtu": 1500, "ipv4": ["172.17.0.1/16"]}

    again = run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)
    assert again.returncode == 0 and "nothing to undo" in again.stdout
