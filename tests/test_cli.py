"""Headless front end: confirmation, systemd absent, a failing restart, output formats, speed of imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from tests.nodelab import IGNORE, LabNode
from wizard.events import EVENTS_VERSION


def apply(node: LabNode, *extra: str, env: dict[str, str] | None = None, input: str | None = None):
    # no API server in this lab: the smoke step has its own tests (test_smoke_step.py)
    return run_wizard("apply", "config.example.yaml", "--root", str(node.root), "--ignore-preflight-errors", IGNORE,
                      "--skip", "smoke", *extra, env=env or node.env, netns=node.ns, input=input)


def test_without_a_terminal_apply_refuses_unless_yes(node: LabNode) -> None:
    before = node.snapshot()
    result = apply(node)
    assert result.returncode == 2
    assert "pass --yes" in result.stderr and "Traceback" not in result.stderr
    assert node.snapshot() == before
    assert node.etcd.get("/kube-centos/network/config") is None


def test_plan_touches_nothing_and_shows_diffs(node: LabNode) -> None:
    before = node.snapshot(mtimes=True)
    result = run_wizard("plan", "config.example.yaml", "--root", str(node.root), "--skip", "smoke", env=node.env,
                        netns=node.ns)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "+FLANNEL_OPTIONS=\"\"" in result.stdout and "would create /kube-centos/network/config" in result.stdout
    assert node.snapshot(mtimes=True) == before
    assert node.etcd.get("/kube-centos/network/config") is None
    assert not (node.root / "var/lib/flannel-wizard").exists()


def test_without_systemd_restarts_become_warnings(node: LabNode) -> None:
    env = {**node.env, "FW_SYSTEMCTL_MODE": "nosystemd"}
    result = apply(node, "--yes", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemd is not running here" in result.stdout
    assert "systemctl daemon-reload && systemctl restart flanneld" in result.stdout
    assert "[warn] docker: skipped: /run/flannel/subnet.env does not exist yet" in result.stdout
    assert (node.root / "etc/sysconfig/flanneld").read_text().count("FLANNEL_ETCD_ENDPOINTS=\"http://127.0.0.1:2379\"") == 1


def test_each_service_restarts_once_in_order_and_docker_is_asked_once_per_run(node: LabNode) -> None:
    log = Path(node.env["FW_STANDIN_LOG"])
    env = {**node.env, "FW_DOCKER_LOG": str(log)}  # docker's calls in the same log, in order
    first = apply(node, "--yes", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    calls = log.read_text().splitlines()
    # the docker step changes daemon.json (bip, mtu) and the cgroup step changes it again (the driver): one restart
    assert [c for c in calls if " restart " in c] == [
        "systemctl restart flanneld", "systemctl restart docker", "systemctl restart kubelet"], calls
    assert sum(c.startswith("docker info") for c in calls) == 1, calls
    assert "docker restarts once, after the cgroup step's changes" in first.stdout
    journal = json.loads((node.root / "var/lib/flannel-wizard/journal.json").read_text())
    assert {e["state"] for e in journal["entries"]} == {"applied"} and journal["owed"] == []  # the run's last write
    log.unlink()
    again = apply(node, "--yes", env=env)
    assert again.returncode == 0 and "done: 0 change(s)" in again.stdout, again.stdout + again.stderr
    assert log.read_text().splitlines() == ["docker info --format {{.CgroupDriver}}"]  # verify reuses inspect's


def test_undo_after_a_cgroup_rollback_restarts_docker_for_the_docker_steps_changes(node: LabNode) -> None:
    """kubelet's restart fails: the cgroup step rolls back, its docker restart too (reversing it restarts docker
    with the docker step's configuration, which stays). undo must still restart docker when it puts the docker
    step's files back, so that restart is the docker step's own entry now."""
    log = Path(node.env["FW_STANDIN_LOG"])
    failed = apply(node, "--yes", env={**node.env, "FW_SYSTEMCTL_FAIL": "kubelet"})
    assert failed.returncode == 1 and "[fail] cgroup:" in failed.stdout, failed.stdout + failed.stderr
    assert "docker: restarted docker with this step's configuration (in the rollback above)" in failed.stdout
    journal = json.loads((node.root / "var/lib/flannel-wizard/journal.json").read_text())
    docker = [(e["kind"], e["state"]) for e in journal["entries"] if e["step"] == "docker"]
    assert ("restart", "applied") in docker and journal["owed"] == [], (docker, journal["owed"])
    log.unlink()
    undone = run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "systemctl restart docker" in log.read_text().splitlines(), log.read_text()
    assert node.bridge() == {"mtu": 1500, "ipv4": ["172.17.0.1/16"]}


def test_a_step_that_fails_before_its_first_change_leaves_no_restart_behind(node: LabNode, tmp_path: Path) -> None:
    """The docker step leaves its restart to the cgroup step, then its first write fails (a read-only file
    system, for real): it changed nothing, so docker is not restarted and nothing stays owed."""
    ro = node.root / "srv/ro"
    ro.mkdir(parents=True)
    answers = tmp_path / "answers.yaml"
    answers.write_text((lab.REPO / "config.example.yaml").read_text().replace(
        "  opts_file: auto", "  opts_file: /srv/ro/docker_opts.env"))
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        result = run_wizard("apply", str(answers), "--root", str(node.root), "--ignore-preflight-errors", IGNORE,
                            "--skip", "smoke", "--yes", env=node.env, netns=node.ns)
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    assert result.returncode == 1 and "[fail] docker:" in result.stdout, result.stdout + result.stderr
    assert "remount it read-write" in result.stdout  # the write's own error, not a later one
    restarts = [c for c in Path(node.env["FW_STANDIN_LOG"]).read_text().splitlines() if " restart " in c]
    assert restarts == ["systemctl restart flanneld"], restarts
    journal = json.loads((node.root / "var/lib/flannel-wizard/journal.json").read_text())
    assert journal["owed"] == [] and "still to restart" not in result.stdout


def test_a_failing_restart_fails_the_step_and_rolls_it_back(node: LabNode) -> None:
    env = {**node.env, "FW_SYSTEMCTL_FAIL": "docker"}
    result = apply(node, "--yes", "--output", "json", env=env)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events, closing = lines[:-1], lines[-1]["result"]
    assert closing["code"] == 1 and closing["version"] == EVENTS_VERSION
    assert [s["status"] for s in closing["steps"]][-1] == "failed"
    failed = [e for e in events if e["status"] == "failed" and e["kind"] == "step"]
    # docker restarts once, in the cgroup step: its failure rolls the cgroup step back, then the docker
    # step, whose configuration docker would not start with either
    assert [e["step"] for e in failed] == ["cgroup", "docker"]
    assert all("Job for docker.service failed" in e["message"] and "rolled back" in e["detail"] for e in failed)
    assert [s["status"] for s in closing["steps"] if s["name"] in ("docker", "cgroup")] == ["failed", "failed"]
    assert all({"step", "status", "message", "elapsed"} <= set(e) for e in events)
    assert not (node.root / "run/docker_opts.env").exists()  # the docker step's own changes are undone
    assert node.bridge() == {"mtu": 1500, "ipv4": ["172.17.0.1/16"]}
    assert "FLANNEL_ETCD_ENDPOINTS=\"http://127.0.0.1:2379\"" in (node.root / "etc/sysconfig/flanneld").read_text()


def test_confirmation_on_a_terminal(node: LabNode) -> None:
    script = node.root.parent / "answer-no.py"
    # a pseudo-terminal, so apply asks; the reply is "n"
    script.write_text(
        "import os, pty, sys\n"
        "pid, fd = pty.fork()\n"
        "if pid == 0:\n"
        "    os.execvp(sys.argv[1], sys.argv[1:])\n"
        "out = b''\n"
        "while b'[y/N]' not in out:\n"
        "    out += os.read(fd, 4096)\n"
        "os.write(fd, b'n\\n')\n"
        "try:\n"
        "    while True:\n"
        "        chunk = os.read(fd, 4096)\n"
        "        if not chunk: break\n"
        "        out += chunk\n"
        "except OSError:\n"
        "    pass\n"
        "sys.stdout.write(out.decode())\n"
        "sys.exit(os.waitpid(pid, 0)[1] >> 8)\n"
    )
    argv = node.ns.prefix() + [sys.executable, str(script), *lab.wizard_argv(
        "apply", "config.example.yaml", "--root", str(node.root), "--ignore-preflight-errors", IGNORE, "--skip", "smoke")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=lab.REPO,
                            env={**node.env, "PYTHONPATH": str(lab.REPO)})
    assert result.returncode == 0, result.stdout
    assert re.search(r"Apply \d+ change\(s\) to this node\? \[y/N\] n", result.stdout), result.stdout
    assert "Nothing was changed." in result.stdout
    assert node.etcd.get("/kube-centos/network/config") is None


def test_help_and_validate_do_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from wizard.cli import main\n"
        "main(['validate', 'config.example.yaml'])\n"
        "heavy = [m for m in ('grpc', 'etcd3', 'pyroute2', 'textual', 'sh') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=lab.REPO, timeout=30)
    assert result.stdout.strip().endswith("[]"), result.stdout + result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run_wizard("apply", "config.example.yaml", "--only", "dockr")
    assert result.returncode == 2 and "unknown step dockr" in result.stderr
    assert run_wizard().returncode == 2
    missing = run_wizard("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_schema_is_json_schema() -> None:
    result = run_wizard("schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0
    assert {"version", "etcd", "network", "flanneld", "docker", "cgroup", "smoke_test"} <= set(schema["properties"])


def test_ctrl_c_rolls_back_the_step_in_flight(node: LabNode) -> None:
    import os
    import signal

    env = {**node.env, "FW_FLANNELD_HANG": "1", "PYTHONPATH": str(lab.REPO)}
    log = Path(env["FW_STANDIN_LOG"])
    argv = node.ns.prefix() + lab.wizard_argv("apply", "config.example.yaml", "--root", str(node.root), "--yes",
                                              "--ignore-preflight-errors", IGNORE)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=lab.REPO,
                            stdin=subprocess.DEVNULL)
    try:
        lab.wait_for(lambda: log.exists() and "restart flanneld" in log.read_text(), 20, "the flanneld restart")
        os.kill(proc.pid, signal.SIGINT)  # `ip netns exec` execs the wizard, so this is its pid
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert "interrupted" in out
    from tests.nodelab import SEED_ENV

    assert (node.root / "etc/sysconfig/flanneld").read_text() == SEED_ENV  # the step in flight rolled back
    journal = json.loads((node.root / "var/lib/flannel-wizard/journal.json").read_text())
    states = {e["summary"].split(" (")[0]: e["state"] for e in journal["entries"]}
    assert states["create /kube-centos/network/config in etcd"] == "applied"  # earlier steps stay
    assert states["update /etc/sysconfig/flanneld"] == "rolled-back"
    undo = run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)
    assert undo.returncode == 0 and node.etcd.get("/kube-centos/network/config") is None


def test_etcd_password_goes_to_a_root_only_file(tmp_path: Path, standin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.engine import messages, run_steps

    monkeypatch.setenv("PATH", standin_env["PATH"])
    monkeypatch.setenv("FW_SYSTEMCTL_MODE", "nosystemd")
    monkeypatch.setenv("FW_TEST_PW", "hunter2-secret")
    text = "version: 1\netcd:\n  username: flannel\n  password_env: FW_TEST_PW\n"
    code, events = run_steps(text, tmp_path, ["flanneld"])
    assert code == 0, messages(events)
    secret = tmp_path / "etc/sysconfig/flanneld.etcd-password"
    assert secret.read_text() == 'FLANNELD_ETCD_PASSWORD="hunter2-secret"\n'
    assert secret.stat().st_mode & 0o777 == 0o600
    dropin = tmp_path / "etc/systemd/system/flanneld.service.d/50-flannel-wizard-etcd-password.conf"
    assert dropin.read_text() == "[Service]\nEnvironmentFile=/etc/sysconfig/flanneld.etcd-password\n"
    assert "-etcd-username=flannel" in (tmp_path / "etc/sysconfig/flanneld").read_text()
    assert "hunter2" not in (tmp_path / "etc/sysconfig/flanneld").read_text()
    assert all("hunter2" not in e.message + e.detail for e in events)
    assert "hunter2" not in (tmp_path / "var/lib/flannel-wizard/journal.json").read_text()
    (tmp_path / "a.yaml").write_text(text)
    plan = run_wizard("plan", str(tmp_path / "a.yaml"), "--only", "flanneld", "--root", str(tmp_path / "r"),
                      env={**standin_env, "FW_TEST_PW": "hunter2-secret"})
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "hunter2" not in plan.stdout and "contents not shown" in plan.stdout
