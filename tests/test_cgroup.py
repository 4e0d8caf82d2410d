"""cgroup drivers: detection on every runtime, structural edits that keep the rest of each file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.engine import messages, run_steps
from wizard import cgroupfiles

CONTAINERD_V2 = """# containerd 1.x
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"  # keep me

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
"""
CONTAINERD_V3 = 'version = 3\n\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n'


def answers(runtime: str, driver: str = "cgroupfs", extra: str = "") -> str:
    return f"version: 1\ncgroup:\n  runtime: {runtime}\n  driver: {driver}\n{extra}"


def test_containerd_v2_edit_keeps_comments(tmp_path: Path) -> None:
    out = cgroupfiles.containerd_config(CONTAINERD_V2, "cgroupfs")
    assert "# keep me" in out and "# containerd 1.x" in out
    doc = tomllib.loads(out)
    assert doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert doc["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == "registry.k8s.io/pause:3.9"


def test_containerd_v3_uses_the_new_table(tmp_path: Path) -> None:
    doc = tomllib.loads(cgroupfiles.containerd_config(CONTAINERD_V3, "systemd"))
    assert doc["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert doc["plugins"]["io.containerd.cri.v1.images"]["snapshotter"] == "overlayfs"


def test_containerd_step_detects_and_fixes(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", standin_env["PATH"])
    (tmp_path / "etc/containerd").mkdir(parents=True)
    (tmp_path / "etc/containerd/config.toml").write_text(CONTAINERD_V2)
    code, events = run_steps(answers("auto"), tmp_path, ["cgroup"])
    assert code == 0, messages(events)
    said = "\n".join(messages(events))
    # kubelet prints no mismatch line for containerd: the wizard says it is its own finding, in no component's words
    assert "kubelet's cgroup driver (cgroupfs) is not containerd's (systemd) — the wizard's own finding" in said
    assert "misconfiguration" not in said and "different from containerd cgroup driver" not in said
    assert "SystemdCgroup = false" in (tmp_path / "etc/containerd/config.toml").read_text()
    assert "kubelet and containerd both report cgroupfs" in messages(events)


def test_crio_dropin(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", standin_env["PATH"])
    (tmp_path / "etc/crio").mkdir(parents=True)
    (tmp_path / "etc/crio/crio.conf").write_text('[crio.runtime]\ncgroup_manager = "systemd"\n')
    code, events = run_steps(answers("cri-o"), tmp_path, ["cgroup"])
    assert code == 0, messages(events)
    dropin = tomllib.loads((tmp_path / "etc/crio/crio.conf.d/99-flannel-wizard-cgroup.conf").read_text())
    assert dropin == {"crio": {"runtime": {"cgroup_manager": "cgroupfs", "conmon_cgroup": "pod"}}}
    assert (tmp_path / "etc/crio/crio.conf").read_text() == '[crio.runtime]\ncgroup_manager = "systemd"\n'


def test_kubelet_flag_in_old_env_file_wins_and_is_edited(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", standin_env["PATH"])
    monkeypatch.setenv("FW_TEST_ROOT", str(tmp_path))
    (tmp_path / "etc/kubernetes").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/kubelet").write_text(
        '# kubelet\nKUBELET_ADDRESS="--address=0.0.0.0"\nKUBELET_ARGS="--pod-infra-container-image=pause:3.1 --cgroup-driver=cgroupfs"\n')
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text('{"exec-opts": ["native.cgroupdriver=systemd"], "debug": true}\n')
    code, events = run_steps(answers("docker", "systemd"), tmp_path, ["cgroup"])
    assert code == 0, messages(events)
    assert (tmp_path / "etc/kubernetes/kubelet").read_text() == (
        '# kubelet\nKUBELET_ADDRESS="--address=0.0.0.0"\n'
        'KUBELET_ARGS="--pod-infra-container-image=pause:3.1 --cgroup-driver=systemd"\n')
    assert json.loads((tmp_path / "etc/docker/daemon.json").read_text()) == {"exec-opts": ["native.cgroupdriver=systemd"], "debug": True}
    assert not (tmp_path / "var/lib/kubelet/config.yaml").exists()  # the flag is where kubelet reads it


def test_kubelet_yaml_edit_keeps_comments_and_keys() -> None:
    text = "# by kubeadm\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDomain: cluster.local  # dns\n"
    out = cgroupfiles.kubelet_config(text, "systemd")
    assert out.startswith("# by kubeadm\n") and "# dns" in out
    assert yaml.safe_load(out) == {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                                   "clusterDomain": "cluster.local", "cgroupDriver": "systemd"}


def test_docker_exec_opts_keeps_other_options() -> None:
    out = json.loads(cgroupfiles.docker_daemon_json('{"exec-opts": ["native.umask=normal", "native.cgroupdriver=systemd"]}', "cgroupfs"))
    assert out == {"exec-opts": ["native.umask=normal", "native.cgroupdriver=cgroupfs"]}


def test_mismatch_words_are_kubelets_only_for_docker() -> None:
    """kubelet printed its mismatch line in the dockershim era, for docker; for containerd and CRI-O
    no component prints one, so the wizard says it is its own finding instead of inventing kubelet text."""
    from wizard import runtimes

    assert runtimes.mismatch_message("cgroupfs", "docker", "systemd") == (
        'misconfiguration: kubelet cgroup driver: "cgroupfs" is different from docker cgroup driver: "systemd"')
    for name in ("containerd", "cri-o"):
        said = runtimes.mismatch_message("systemd", name, "cgroupfs")
        assert "the wizard's own finding" in said and "misconfiguration" not in said and "cgroup driver:" not in said
