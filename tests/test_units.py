"""Units read as systemd reads them, from the packages' own unit files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import unitfixtures
from wizard import units
from wizard.node.files import Files


@pytest.fixture
def root(tmp_path: Path) -> Files:
    return Files(str(tmp_path))


def test_centos7_flanneld_runs_the_wrapper_with_the_env_file(tmp_path: Path, root: Files) -> None:
    unitfixtures.install(tmp_path, "centos7-flannel")
    unit = units.load(root, "flanneld")
    assert unit is not None and unit.path == "/usr/lib/systemd/system/flanneld.service"
    assert unit.program() == "flanneld-start"
    assert unit.uses("FLANNEL_OPTIONS") and not unit.uses("FLANNEL")
    assert unit.reads("/etc/sysconfig/flanneld")
    assert units.environment(root, unit)["FLANNEL_ETCD_PREFIX"] == "/atomic.io/network"


def test_centos7_docker_takes_the_flannel_drop_in_and_passes_the_driver_as_a_flag(tmp_path: Path, root: Files) -> None:
    unitfixtures.install(tmp_path, "centos7-flannel", "centos7-docker")
    (tmp_path / "run/flannel").mkdir(parents=True)
    (tmp_path / "run/flannel/docker").write_text('DOCKER_NETWORK_OPTIONS=" --bip=172.30.5.1/24 --ip-masq=true --mtu=1450"\n')
    unit = units.load(root, "docker")
    assert unit is not None and unit.dropins == ["/usr/lib/systemd/system/docker.service.d/flannel.conf"]
    assert unit.reads("/run/flannel/docker") and unit.uses("DOCKER_NETWORK_OPTIONS")
    origin: dict[str, str] = {}
    env = units.environment(root, unit, origin)
    assert origin["DOCKER_NETWORK_OPTIONS"] == "/run/flannel/docker"
    found = units.flag_words(unit, env)
    assert found["bip"] == [units.Word("172.30.5.1/24", "DOCKER_NETWORK_OPTIONS")]
    assert found["exec-opt"] == [units.Word("native.cgroupdriver=systemd", "")]  # written in ExecStart itself


def test_an_etc_drop_in_overrides_the_packaged_one_of_the_same_name(tmp_path: Path, root: Files) -> None:
    unitfixtures.install(tmp_path, "debian12-docker")
    for directory, text in (("lib/systemd/system", "Environment=A=packaged\n"), ("etc/systemd/system", "Environment=A=local\n")):
        path = tmp_path / directory / "docker.service.d/10-a.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[Service]\n" + text)
    unit = units.load(root, "docker")
    assert unit is not None and unit.path == "/lib/systemd/system/docker.service"
    assert unit.dropins == ["/etc/systemd/system/docker.service.d/10-a.conf"]
    assert unit.environment["A"] == "local"
    assert unit.uses("DOCKER_OPTS") and unit.reads("/etc/default/docker")


def test_kubeadm_drop_in_resets_execstart_and_expands_the_flag_files(tmp_path: Path, root: Files) -> None:
    unitfixtures.install(tmp_path, "kubeadm")
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/kubelet").write_text("KUBELET_EXTRA_ARGS=--cgroup-driver=cgroupfs\n")
    unit = units.load(root, "kubelet")
    assert unit is not None and unit.where("ExecStart").endswith("10-kubeadm.conf")
    origin: dict[str, str] = {}
    found = units.flag_words(unit, units.environment(root, unit, origin))
    assert found["config"] == [units.Word("/var/lib/kubelet/config.yaml", "KUBELET_CONFIG_ARGS")]
    assert found["cgroup-driver"] == [units.Word("cgroupfs", "KUBELET_EXTRA_ARGS")]
    assert origin["KUBELET_EXTRA_ARGS"] == "/etc/default/kubelet"
    assert origin["KUBELET_CONFIG_ARGS"].endswith("kubelet.service.d/10-kubeadm.conf")


def test_systemctl_cat_output_is_read_file_by_file() -> None:
    text = ("# /lib/systemd/system/docker.service\n[Service]\nEnvironmentFile=-/etc/default/docker\n"
            "ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS\n\n"
            "# /etc/systemd/system/docker.service.d/override.conf\n[Service]\nExecStart=\n"
            "ExecStart=/usr/sbin/dockerd --config-file=/srv/daemon.json\n")
    unit = units.from_systemctl_cat("docker", text)
    assert unit is not None and unit.path == "/lib/systemd/system/docker.service"
    assert unit.dropins == ["/etc/systemd/system/docker.service.d/override.conf"]
    assert units.flags(units.command(unit, {})[1:]) == {"config-file": ["/srv/daemon.json"]}
    assert not unit.uses("DOCKER_OPTS")


def test_no_unit_is_none(root: Files) -> None:
    assert units.load(root, "flanneld") is None


def test_execstartpost_is_a_list_that_an_empty_assignment_resets(tmp_path: Path, root: Files) -> None:
    unitfixtures.install(tmp_path, "centos7-flannel")
    unit = units.load(root, "flanneld")
    assert unit is not None and unit.exec_start_post == [
        ("/usr/libexec/flannel/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker",
         "/usr/lib/systemd/system/flanneld.service")]
    dropin = tmp_path / "etc/systemd/system/flanneld.service.d/10-opts.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nExecStartPost=\nExecStartPost=/bin/true\nExecStartPost=-/usr/libexec/flannel/"
                      "mk-docker-opts.sh -m -d /run/flannel/docker\n")
    unit = units.load(root, "flanneld")
    assert unit is not None and [line for line, _src in unit.exec_start_post] == [
        "/bin/true", "-/usr/libexec/flannel/mk-docker-opts.sh -m -d /run/flannel/docker"]
    assert {src for _line, src in unit.exec_start_post} == {"/etc/systemd/system/flanneld.service.d/10-opts.conf"}
    assert unit.exec_start == "/usr/bin/flanneld-start $FLANNEL_OPTIONS"  # ExecStart= is its own setting
