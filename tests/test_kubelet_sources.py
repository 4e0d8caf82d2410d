"""kubelet's cgroup driver from every place kubelet reads it, with kubelet's precedence, and the one
place the wizard writes it: the packages' real units and files under a test root (tests/unitfixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests import unitfixtures
from tests.engine import messages, run_steps
from tests.unitfixtures import write
from wizard import runtimes
from wizard.answers import parse
from wizard.node import Node
from wizard.node.files import FileState
from wizard.steps import cgroup

CONFIG_YAML = "var/lib/kubelet/config.yaml"
# the kubelet unit of CentOS 7's kubernetes-node package (the article's era): flags from /etc/kubernetes/*
CENTOS7_KUBELET = """[Unit]
Description=Kubernetes Kubelet Server
After=docker.service
Requires=docker.service

[Service]
WorkingDirectory=/var/lib/kubelet
EnvironmentFile=-/etc/kubernetes/config
EnvironmentFile=-/etc/kubernetes/kubelet
ExecStart=/usr/bin/kubelet \\
            $KUBE_LOGTOSTDERR \\
            $KUBE_LOG_LEVEL \\
            $KUBELET_API_SERVER \\
            $KUBELET_ADDRESS \\
            $KUBELET_PORT \\
            $KUBELET_HOSTNAME \\
            $KUBE_ALLOW_PRIV \\
            $KUBELET_POD_INFRA_CONTAINER \\
            $KUBELET_ARGS
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def answers(driver: str, runtime: str = "auto") -> str:
    return f"version: 1\ncgroup:\n  runtime: {runtime}\n  driver: {driver}\n"


def run(root: Path, text: str, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, code: int = 0) -> list[str]:
    monkeypatch.setenv("PATH", standin_env["PATH"])
    monkeypatch.setenv("FW_TEST_ROOT", str(root))  # the docker stand-in reads daemon.json there
    result, events = run_steps(text, root, ["cgroup"])
    assert result == code, messages(events)
    return messages(events)


def test_the_config_file_kubelet_is_given_is_the_one_read_and_written(tmp_path: Path, standin_env: dict[str, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An /etc drop-in points --config elsewhere: kubelet reads that file, not the answers' default path."""
    unitfixtures.install(tmp_path, "kubeadm")
    write(tmp_path, "etc/systemd/system/kubelet.service.d/20-config.conf",
          '[Service]\nEnvironment="KUBELET_CONFIG_ARGS=--config=/etc/kubernetes/kubelet-config.yaml"\n')
    moved = write(tmp_path, "etc/kubernetes/kubelet-config.yaml",
                  "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs  # by hand\n")
    kubeadm_written = (tmp_path / CONFIG_YAML).read_text()
    said = run(tmp_path, answers("systemd", "containerd"), standin_env, monkeypatch)
    assert "kubelet uses cgroupfs (cgroupDriver in /etc/kubernetes/kubelet-config.yaml)" in said[1]
    assert yaml.safe_load(moved.read_text())["cgroupDriver"] == "systemd" and "# by hand" in moved.read_text()
    assert (tmp_path / CONFIG_YAML).read_text() == kubeadm_written


def test_a_flag_in_etc_default_kubelet_beats_the_config_file_and_is_the_one_edited(
        tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    unitfixtures.install(tmp_path, "kubeadm")  # config.yaml says systemd
    extra = write(tmp_path, "etc/default/kubelet", "KUBELET_EXTRA_ARGS=--cgroup-driver=cgroupfs --v=2\n")
    before = (tmp_path / CONFIG_YAML).read_text()
    said = run(tmp_path, answers("systemd", "containerd"), standin_env, monkeypatch)
    assert "kubelet uses cgroupfs (--cgroup-driver in $KUBELET_EXTRA_ARGS of /etc/default/kubelet)" in said[1]
    assert extra.read_text() == 'KUBELET_EXTRA_ARGS="--v=2 --cgroup-driver=systemd"\n'
    assert (tmp_path / CONFIG_YAML).read_text() == before  # one channel: the flag kubelet reads first


def test_a_config_dir_drop_in_beats_the_config_file(tmp_path: Path, standin_env: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """KEP-3983: --config-dir's *.conf files in lexical order override the --config file; the last one
    that sets cgroupDriver is the one written."""
    unitfixtures.install(tmp_path, "kubeadm")  # config.yaml says systemd
    write(tmp_path, "etc/default/kubelet", "KUBELET_EXTRA_ARGS=--config-dir=/etc/kubernetes/kubelet.conf.d\n")
    first = write(tmp_path, "etc/kubernetes/kubelet.conf.d/10-driver.conf",
                  "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n")
    later = write(tmp_path, "etc/kubernetes/kubelet.conf.d/20-other.conf",
                  "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 50\n")
    write(tmp_path, "etc/kubernetes/kubelet.conf.d/30-ignored.yaml", "cgroupDriver: systemd\n")  # not *.conf
    before = (tmp_path / CONFIG_YAML).read_text()
    said = run(tmp_path, answers("systemd", "containerd"), standin_env, monkeypatch)
    assert "kubelet uses cgroupfs (cgroupDriver in /etc/kubernetes/kubelet.conf.d/10-driver.conf)" in said[1]
    assert yaml.safe_load(first.read_text())["cgroupDriver"] == "systemd"
    assert "cgroupDriver" not in later.read_text() and (tmp_path / CONFIG_YAML).read_text() == before


def test_old_kubeadm_flags_env_carries_the_flag(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """kubeadm before 1.21 wrote --cgroup-driver into kubeadm-flags.env itself."""
    unitfixtures.install(tmp_path, "kubeadm")
    flags = write(tmp_path, "var/lib/kubelet/kubeadm-flags.env",
                  'KUBELET_KUBEADM_ARGS="--cgroup-driver=cgroupfs --network-plugin=cni '
                  '--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"\n')
    run(tmp_path, answers("systemd"), standin_env, monkeypatch)
    assert flags.read_text() == ('KUBELET_KUBEADM_ARGS="--network-plugin=cni '
                                 '--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock '
                                 '--cgroup-driver=systemd"\n')


def test_centos7_kubelet_without_flag_or_config_gets_the_flag_in_kubelet_args(
        tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "usr/lib/systemd/system/kubelet.service", CENTOS7_KUBELET)
    env = write(tmp_path, "etc/kubernetes/kubelet", '# kubelet\nKUBELET_ADDRESS="--address=0.0.0.0"\nKUBELET_ARGS=""\n')
    write(tmp_path, "etc/docker/daemon.json", '{"exec-opts": ["native.cgroupdriver=systemd"]}\n')
    said = run(tmp_path, answers("systemd", "docker"), standin_env, monkeypatch)
    assert "kubelet uses cgroupfs (kubelet's default (no --cgroup-driver, no --config))" in said[1]
    assert env.read_text() == '# kubelet\nKUBELET_ADDRESS="--address=0.0.0.0"\nKUBELET_ARGS="--cgroup-driver=systemd"\n'
    assert not (tmp_path / CONFIG_YAML).exists()  # kubelet is given no config file: writing one would change nothing


def test_a_flag_written_in_the_unit_is_left_to_the_operator(tmp_path: Path, standin_env: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    unit = CENTOS7_KUBELET.replace("$KUBELET_ARGS", "--cgroup-driver=cgroupfs $KUBELET_ARGS")
    write(tmp_path, "usr/lib/systemd/system/kubelet.service", unit)
    write(tmp_path, "etc/docker/daemon.json", '{"exec-opts": ["native.cgroupdriver=systemd"]}\n')
    said = run(tmp_path, answers("systemd", "docker"), standin_env, monkeypatch, code=1)
    assert any("kubelet's --cgroup-driver is written in its unit (/usr/lib/systemd/system/kubelet.service)" in m for m in said)
    assert (tmp_path / "usr/lib/systemd/system/kubelet.service").read_text() == unit


def test_detection_follows_kubelets_runtime_endpoint_not_this_machines_path(
        tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """docker's unit is there too (Debian's docker.io pulls in containerd), and dockerd may be on this
    machine's PATH: kubelet's --container-runtime-endpoint says containerd."""
    unitfixtures.install(tmp_path, "kubeadm", "debian12-docker")
    said = run(tmp_path, answers("cgroupfs"), standin_env, monkeypatch)
    assert said[1].startswith("containerd uses cgroupfs")
    no_kubelet = tmp_path / "other"
    unitfixtures.install(no_kubelet, "debian12-docker")
    assert runtimes.runtime(Node(str(no_kubelet)), parse(answers("cgroupfs"))) == "docker"
    in_config = tmp_path / "in-config"  # newer kubeadm: the endpoint in config.yaml, not a flag
    unitfixtures.install(in_config, "kubeadm", "debian12-docker")
    write(in_config, "var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS=""\n')
    assert runtimes.runtime(Node(str(in_config)), parse(answers("cgroupfs"))) == "docker"  # by docker's unit
    config = in_config / CONFIG_YAML
    config.write_text(config.read_text() + "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n")
    assert runtimes.runtime(Node(str(in_config)), parse(answers("cgroupfs"))) == "containerd"
    empty = tmp_path / "empty"
    write(empty, "etc/crio/crio.conf", '[crio.runtime]\ncgroup_manager = "systemd"\n')
    assert runtimes.runtime(Node(str(empty)), parse(answers("cgroupfs"))) == "cri-o"


# ---------------------------------------------------------------- KEP-4033: the driver from the CRI

@pytest.mark.parametrize(("version", "gate", "expected"), [
    ((1, 27), True, False),   # no gate before 1.28
    ((1, 28), None, False),   # alpha: off unless turned on
    ((1, 30), True, True),
    ((1, 31), None, True),    # beta: on by default
    ((1, 33), False, False),
    ((1, 34), False, True),   # GA, locked on
])
def test_kubelet_takes_the_driver_from_containerd_2(version: tuple[int, int], gate: bool | None, expected: bool) -> None:
    """pkg/features/kube_features.go: KubeletCgroupDriverFromCRI alpha 1.28 (off), beta 1.31 (on),
    GA 1.34 (locked); containerd answers RuntimeConfig from 2.0 (internal/cri/server/runtime_config.go)."""
    assert bool(runtimes.from_cri(version, gate, "containerd", (2, 0))) is expected
    assert runtimes.from_cri(version, gate, "containerd", (1, 7)) == ""  # containerd 1.x does not answer it
    assert runtimes.from_cri(version, gate, "docker", None) == ""  # nor does cri-dockerd


def kubelet_on_path(tmp_path: Path, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `kubelet` that prints its version, because no kubelet package is installable here."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubelet"
    script.write_text(f"#!/bin/sh\necho 'Kubernetes v{version}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_kubelet_version_and_feature_gate_from_its_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unitfixtures.install(tmp_path, "kubeadm")
    kubelet_on_path(tmp_path, "1.31.2", monkeypatch)
    node, a = Node(str(tmp_path)), parse(answers("systemd"))
    found = runtimes.kubelet(node, a, "containerd", (2, 1))
    assert found.version == (1, 31) and "KEP-4033" in found.from_cri and "containerd 2.1" in found.from_cri
    config = tmp_path / CONFIG_YAML
    config.write_text(config.read_text() + "featureGates:\n  KubeletCgroupDriverFromCRI: false\n")
    assert runtimes.kubelet(node, a, "containerd", (2, 1)).from_cri == ""
    write(tmp_path, "etc/default/kubelet", "KUBELET_EXTRA_ARGS=--feature-gates=KubeletCgroupDriverFromCRI=true\n")
    assert runtimes.kubelet(node, a, "containerd", (2, 1)).from_cri != ""  # the flag beats the config file


def test_a_kubelet_following_the_runtime_claims_no_mismatch_and_is_not_written() -> None:
    facts = cgroup.Facts("containerd", runtimes.Driver("cgroupfs", "containerd's default"),
                         runtimes.Driver("systemd", "cgroupDriver in /var/lib/kubelet/config.yaml"), True,
                         "/etc/containerd/config.toml", FileState(b"version = 2\n", 0o644), FileState(None),
                         FileState(b"cgroupDriver: systemd\n", 0o644),
                         kubelet_from_cri="kubelet 1.31 takes the cgroup driver from containerd 2.0 (KEP-4033)")
    plan = cgroup.plan(parse(answers("systemd")), facts)
    assert not [n for n in plan.notes if n.status == "warn"]
    assert any("KEP-4033" in n.message for n in plan.notes)
    assert [c.path for c in plan.to_make if hasattr(c, "path")] == ["/etc/containerd/config.toml"]
    assert plan.output.changing == ("containerd",)
