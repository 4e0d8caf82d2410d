"""docker's cgroup driver through one channel, judged by the real dockerd (tests/realdockerd.py).

CentOS 7's docker.service passes `--exec-opt native.cgroupdriver=systemd` as a flag: exec-opts in
daemon.json as well stops dockerd. The wizard reads the unit, writes where the flag comes from or
nowhere, and the real dockerd, given the unit's flags and the daemon.json as the wizard leaves it,
gets past its configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import realdockerd, unitfixtures
from tests.engine import messages, run_steps
from tests.unitfixtures import write
from wizard import units
from wizard.node.files import Files

needs_dockerd = pytest.mark.skipif(bool(realdockerd.missing()), reason=realdockerd.missing() or "dockerd can judge")
# flags of a unit that point dockerd at this machine's sockets: the judge runs it on its own
HOST_FLAGS = ("-H", "--host", "--containerd")
DAEMON_JSON = "etc/docker/daemon.json"
BOTH = "specified both as a flag and in the configuration file"


def answers(driver: str) -> str:
    return f"version: 1\ncgroup:\n  runtime: docker\n  driver: {driver}\n"


def wizard(root: Path, driver: str, code: int = 0) -> list[str]:
    """The cgroup step on the test root. No docker stand-in on PATH: `docker info` finds no daemon,
    and the driver is read from the unit and files, as on a node whose docker is stopped."""
    result, events = run_steps(answers(driver), root, ["cgroup"])
    assert result == code, messages(events)
    return [e.message + (f"\n{e.detail}" if e.detail else "") for e in events]  # the fix is in the detail


def own(flags: list[str]) -> list[str]:
    """A unit's flags without those naming this machine's sockets (dockerd would wait a minute for a
    containerd that is not there)."""
    out: list[str] = []
    skip = False
    for flag in flags:
        if skip:
            skip = False
        elif flag.split("=", 1)[0] in HOST_FLAGS:
            skip = "=" not in flag
        else:
            out.append(flag)
    return out


def exec_opts(root: Path) -> list[str]:
    """The unit's --exec-opt flags as systemd expands them. Only those: RHEL's dockerd-current has
    flags upstream dockerd lacks (--signature-verification), and exec-opts is the directive judged."""
    files = Files(str(root))
    unit = units.load(files, "docker")
    assert unit is not None
    found = units.flag_words(unit, units.environment(files, unit))
    return [f"--exec-opt={w.text}" for w in found.get("exec-opt", [])]


@needs_dockerd
def test_the_judge_refuses_exec_opts_given_twice(tmp_path: Path) -> None:
    """The real dockerd can fail this test: the same directive as a flag and in daemon.json."""
    config = write(tmp_path, "daemon.json", '{"exec-opts": ["native.cgroupdriver=systemd"]}\n')
    verdict = realdockerd.judge(["--exec-opt=native.cgroupdriver=systemd"], config)
    assert not verdict.accepted and BOTH in verdict.message and "exec-opts" in verdict.message


@needs_dockerd
def test_centos7_flag_already_systemd_leaves_daemon_json_alone(tmp_path: Path) -> None:
    unitfixtures.install(tmp_path, "centos7-docker", "kubeadm")
    text = '{"log-driver": "journald"}\n'
    write(tmp_path, DAEMON_JSON, text)
    said = wizard(tmp_path, "systemd")
    assert "docker uses systemd (--exec-opt native.cgroupdriver=systemd in /usr/lib/systemd/system/docker.service)" in said[1]
    assert (tmp_path / DAEMON_JSON).read_text() == text
    verdict = realdockerd.judge(exec_opts(tmp_path), tmp_path / DAEMON_JSON)
    assert verdict.accepted, verdict.message


def test_centos7_flag_that_differs_fails_the_plan_with_the_fix(tmp_path: Path) -> None:
    unitfixtures.install(tmp_path, "centos7-docker")
    text = '{"log-driver": "journald"}\n'
    write(tmp_path, DAEMON_JSON, text)
    said = wizard(tmp_path, "cgroupfs", code=1)
    failed = "\n".join(said)
    assert "docker's unit passes --exec-opt native.cgroupdriver=systemd as a flag (/usr/lib/systemd/system/docker.service)" in failed
    assert "/etc/systemd/system/docker.service.d/" in failed and "cgroup.driver to systemd" in failed
    assert (tmp_path / DAEMON_JSON).read_text() == text


@needs_dockerd
def test_a_flag_from_an_environment_file_is_edited_there(tmp_path: Path) -> None:
    """Debian's unit passes $DOCKER_OPTS from /etc/default/docker: the flag is changed in that file,
    daemon.json keeps no exec-opts, and the real dockerd accepts the unit's expanded command."""
    unitfixtures.install(tmp_path, "debian12-docker")
    opts = write(tmp_path, "etc/default/docker", 'DOCKER_OPTS="--exec-opt native.cgroupdriver=cgroupfs --icc=false"\n')
    write(tmp_path, DAEMON_JSON, '{"log-driver": "json-file"}\n')
    wizard(tmp_path, "systemd")
    assert opts.read_text() == 'DOCKER_OPTS="--exec-opt native.cgroupdriver=systemd --icc=false"\n'
    assert json.loads((tmp_path / DAEMON_JSON).read_text()) == {"log-driver": "json-file"}
    files = Files(str(tmp_path))
    unit = units.load(files, "docker")
    assert unit is not None
    command = units.command(unit, units.environment(files, unit))
    verdict = realdockerd.judge(own(command[1:]), tmp_path / DAEMON_JSON)
    assert verdict.accepted, verdict.message


@needs_dockerd
def test_config_file_named_by_the_unit_is_the_daemon_json_written(tmp_path: Path) -> None:
    unitfixtures.install(tmp_path, "debian12-docker")
    write(tmp_path, "etc/systemd/system/docker.service.d/override.conf",
          "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// --config-file=/etc/docker/node.json\n")
    custom = write(tmp_path, "etc/docker/node.json", '{"log-driver": "json-file"}\n')
    wizard(tmp_path, "systemd")
    assert json.loads(custom.read_text()) == {"log-driver": "json-file", "exec-opts": ["native.cgroupdriver=systemd"]}
    assert not (tmp_path / DAEMON_JSON).exists()
    verdict = realdockerd.judge([], custom)
    assert verdict.accepted, verdict.message


def test_a_flag_and_exec_opts_already_in_daemon_json_is_named(tmp_path: Path) -> None:
    unitfixtures.install(tmp_path, "centos7-docker")
    write(tmp_path, DAEMON_JSON, '{"exec-opts": ["native.cgroupdriver=systemd"]}\n')
    said = "\n".join(wizard(tmp_path, "systemd", code=1))
    assert f"dockerd would not start: the following directives are {BOTH}: exec-opts" in said
    assert "remove exec-opts from /etc/docker/daemon.json" in said
