"""One run at a time, a journal nobody else can steer, and recovery from the crash points that used to
leave a node half done (issue 9), on the lab node: a namespace with docker0, a real etcd, the stand-ins."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests import lab
from tests.conftest import run_wizard
from tests.nodelab import IGNORE, LabNode

JOURNAL = "var/lib/flannel-wizard/journal.json"


def apply_argv(node: LabNode, *extra: str) -> list[str]:
    return node.ns.prefix() + lab.wizard_argv("apply", "config.example.yaml", "--root", str(node.root), "--yes",
                                               "--ignore-preflight-errors", IGNORE, "--skip", "smoke", *extra)


def apply(node: LabNode, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_wizard("apply", "config.example.yaml", "--root", str(node.root), "--yes", "--ignore-preflight-errors",
                      IGNORE, "--skip", "smoke", *extra, env=env or node.env, netns=node.ns)


def undo(node: LabNode) -> subprocess.CompletedProcess[str]:
    return run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)


def spawn(node: LabNode, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(apply_argv(node, *extra), env={**env, "PYTHONPATH": str(lab.REPO)}, cwd=lab.REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def standins_of(log: str) -> list[int]:
    """Stand-in processes of one test (their environment names its log), which a killed run leaves behind."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"FW_STANDIN_LOG={log}".encode() in environ and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def kill_all(procs: list[subprocess.Popen[str]], log: str) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    for pid in standins_of(log):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_second_apply_is_refused_while_the_first_holds_the_lock(node: LabNode) -> None:
    before = node.snapshot()
    # the first run waits on a flanneld that never writes its subnet file: it holds the lock meanwhile
    env = {**node.env, "FW_FLANNELD_HANG": "1"}
    first = spawn(node, env)
    try:
        lab.wait_for(lambda: "restart flanneld" in Path(env["FW_STANDIN_LOG"]).read_text()
                     if Path(env["FW_STANDIN_LOG"]).exists() else False, 20, "the first run's flanneld restart")
        second = apply(node)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"another flannel-wizard run is changing this node: pid {first.pid}" in second.stderr
        assert "apply config.example.yaml" in second.stderr and "nothing was touched" in second.stderr
        assert "Traceback" not in second.stderr
        again = undo(node)
        assert again.returncode == 2 and "another flannel-wizard run is changing this node" in again.stderr
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=20)
        assert first.returncode == 130, out + err
    finally:
        kill_all([first], env["FW_STANDIN_LOG"])
    # the first run's journal is whole: undo puts every byte back
    entries = json.loads((node.root / JOURNAL).read_text())["entries"]
    assert entries and all(e["state"] in ("rolled-back", "undone", "failed", "applied") for e in entries)
    done = undo(node)
    assert done.returncode == 0, done.stdout + done.stderr
    assert node.snapshot() == before
    # and a lock its holder left by dying is free again
    killed = spawn(node, env)
    lab.wait_for(lambda: (node.root / "var/lib/flannel-wizard/lock").exists()
                 and str(killed.pid) in (node.root / "var/lib/flannel-wizard/lock").read_text(), 20, "the lock")
    kill_all([killed], env["FW_STANDIN_LOG"])
    assert undo(node).returncode == 0


def test_a_state_dir_others_can_write_is_refused_before_anything_is_read(node: LabNode) -> None:
    state = node.root / "var/lib/flannel-wizard"
    state.mkdir(parents=True, mode=0o700)
    os.chmod(state, 0o777)
    before = node.snapshot()
    result = apply(node)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"state dir {state} has mode 0777" in result.stderr and "chmod 700" in result.stderr
    assert node.snapshot() == before and node.etcd.get("/kube-centos/network/config") is None
    assert undo(node).returncode == 2
    # a symlinked state dir is refused too
    os.chmod(state, 0o700)
    state.rmdir()
    elsewhere = node.root.parent / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state.symlink_to(elsewhere)
    result = apply(node)
    assert result.returncode in (1, 2) and "link" in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and list(elsewhere.iterdir()) == []


def test_a_tampered_journal_steers_nothing_outside_the_root(node: LabNode, tmp_path: Path) -> None:
    first = apply(node)
    assert first.returncode == 0, first.stdout + first.stderr
    outside = tmp_path / "outside.txt"
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    os.chmod(secret, 0o600)
    journal = json.loads((node.root / JOURNAL).read_text())
    entry = next(e for e in journal["entries"] if e["kind"] == "file" and e["record"].get("backup"))
    entry["record"]["backup"] = "../../../../" + str(secret).lstrip("/")
    forged = dict(entry, id=entry["id"][:-3] + "999", record={**entry["record"], "path": "/../../.." + str(outside),
                                                               "backup": f"backups/{entry['id'][:-3]}999"})
    (node.root / "var/lib/flannel-wizard/backups" / forged["id"]).write_bytes(b"attacker bytes\n")
    journal["entries"].append(forged)
    (node.root / JOURNAL).write_text(json.dumps(journal))
    done = undo(node)
    assert done.returncode == 1, done.stdout + done.stderr  # the refused records stay for a person to look at
    assert "refused to undo" in done.stdout
    assert "is not this entry's own" in done.stdout
    assert not outside.exists()
    assert not (node.root / "var/lib/flannel-wizard/backups" / entry["id"]).read_bytes().startswith(b"root:")
    assert "Traceback" not in done.stderr


def test_an_unreadable_journal_is_a_message(node: LabNode) -> None:
    state = node.root / "var/lib/flannel-wizard"
    state.mkdir(parents=True, mode=0o700)
    for text, said in (("", "is empty"), ('{"entries": [', "is not valid JSON"), ('{"entries": 3}', "shape")):
        (state / "journal.json").write_text(text)
        result = undo(node)
        assert result.returncode == 2, (text, result.stdout + result.stderr)
        assert said in result.stderr and "Traceback" not in result.stderr


def test_killed_during_a_restart_the_next_apply_makes_it(node: LabNode) -> None:
    """The config was written and the restart never finished: a rerun used to report 0 changes and leave
    docker on its old options."""
    env = {**node.env, "FW_SYSTEMCTL_BLOCK": "docker"}
    log = env["FW_STANDIN_LOG"]
    run = spawn(node, env)
    try:
        lab.wait_for(lambda: Path(log + ".blocked").exists(), 30, "the docker restart in flight")
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=10)
    finally:
        kill_all([run], log)
    assert "docker" in json.loads((node.root / JOURNAL).read_text())["owed"]
    Path(log).write_text("")
    rerun = apply(node)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "systemctl restart docker" in Path(log).read_text()
    assert json.loads((node.root / JOURNAL).read_text())["owed"] == []
    again = apply(node)
    assert "done: 0 change(s)" in again.stdout  # owed no more


def test_an_undo_killed_before_its_restarts_finishes_them_next_time(node: LabNode) -> None:
    assert apply(node).returncode == 0
    env = {**node.env, "FW_SYSTEMCTL_BLOCK": "docker"}
    log = env["FW_STANDIN_LOG"]
    proc = subprocess.Popen(node.ns.prefix() + lab.wizard_argv("undo", "--root", str(node.root)),
                            env={**env, "PYTHONPATH": str(lab.REPO)}, cwd=lab.REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        lab.wait_for(lambda: Path(log + ".blocked").exists(), 30, "undo's docker restart")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        kill_all([proc], log)
    Path(log).write_text("")
    done = undo(node)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restarting what an interrupted run left owed: docker" in done.stdout
    assert "restarted docker with its restored configuration" in done.stdout
    assert "systemctl restart docker" in Path(log).read_text()
    assert "nothing to undo" in undo(node).stdout


def test_undo_of_an_etcd_key_already_restored_succeeds(node: LabNode) -> None:
    """Killed between undo's delete and its journal save, every later undo used to fail forever."""
    assert apply(node).returncode == 0
    node.etcd.ctl("del", "/kube-centos/network/config")  # as the killed undo left it
    done = undo(node)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/kube-centos/network/config is already absent" in done.stdout


def test_children_do_not_inherit_the_etcd_password(node: LabNode, tmp_path: Path) -> None:
    answers = tmp_path / "auth.yaml"
    answers.write_text((lab.REPO / "config.example.yaml").read_text().replace(
        "password_env: null      # e.g. ETCD_PASSWORD", "password_env: FW_TEST_ETCD_PW").replace(
        "username: null", "username: flannel"))
    env = {**node.env, "FW_TEST_ETCD_PW": "s3cret-pw", "FW_STANDIN_ENV": "1"}
    result = run_wizard("apply", str(answers), "--root", str(node.root), "--yes", "--ignore-preflight-errors", IGNORE,
                        "--only", "flanneld", env=env, netns=node.ns)  # it restarts flanneld: systemctl runs
    assert Path(env["FW_STANDIN_LOG"]).exists(), result.stdout + result.stderr
    log = Path(env["FW_STANDIN_LOG"]).read_text()
    assert "systemctl env" in log, result.stdout + result.stderr
    assert "FW_TEST_ETCD_PW" not in log and "PATH" in log
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_disk_full_under_the_root_is_a_message_and_the_step_is_rolled_back(node: LabNode, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)], check=True)
    try:
        for rel in ("etc/sysconfig", "etc/docker", "var/lib/kubelet"):
            (small / rel).mkdir(parents=True)
        for rel in ("etc/sysconfig/flanneld", "etc/docker/daemon.json", "var/lib/kubelet/config.yaml"):
            (small / rel).write_bytes((node.root / rel).read_bytes())
        env = {**node.env, "FW_TEST_ROOT": str(small)}
        started = time.monotonic()
        # fill the disk once the journal's reserve exists, from inside the run: a file takes what is left
        filler = small / "filler"
        first = run_wizard("apply", "config.example.yaml", "--root", str(small), "--yes", "--ignore-preflight-errors",
                           IGNORE, "--skip", "smoke", "--only", "preflight", env=env, netns=node.ns)
        assert first.returncode == 0, first.stdout + first.stderr
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        result = run_wizard("apply", "config.example.yaml", "--root", str(small), "--yes", "--ignore-preflight-errors",
                            IGNORE, "--skip", "smoke", env=env, netns=node.ns)
        assert result.returncode in (1, 2), result.stdout + result.stderr
        assert "Traceback" not in result.stderr and time.monotonic() - started < 60
        said = result.stdout + result.stderr
        assert "is full" in said or "no space left on its file system" in said, said
        # the write that spent the journal's reserve recorded the first change: that change is not made
        assert node.etcd.get("/kube-centos/network/config") is None, said
        filler.unlink()
        assert undo_at(node, small, env).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def undo_at(node: LabNode, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_wizard("undo", "--root", str(root), env=env, netns=node.ns)


def test_ctrl_c_at_any_moment_is_exit_130_and_one_line(tmp_path: Path) -> None:
    """From the wizard's first line to its last flush: never a traceback, never a bare -2. (Python's own
    start-up, before any of the wizard's code runs, is out of its reach: the delays start after it.)"""
    root = tmp_path / "root"
    root.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lab.REPO)}
    argv = lab.wizard_argv("plan", "config.example.yaml", "--root", str(root), "--skip", "smoke")
    for delay in (0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8):
        proc = subprocess.Popen(argv, cwd=lab.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL)
        time.sleep(delay)  # the moment of the Ctrl+C is what is varied here, not a wait for a condition
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        if proc.returncode == 0 and "interrupted" not in err:
            continue  # finished before the signal came
        assert proc.returncode == 130, (delay, proc.returncode, out[-500:], err[-2000:])
        assert "interrupted" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)


def test_the_wizards_apply_says_who_holds_the_lock() -> None:
    import asyncio
    import shutil

    from tests.tui import confirm_apply, demo_app, goto, shown
    from wizard.lock import RunLock

    async def main() -> None:
        app = demo_app()
        held = RunLock(app.session.journal())
        held.acquire()  # another run on this node (here: this process, through its own open file)
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await goto(pilot, app, "review")
                assert await confirm_apply(pilot, app) == 2
                message = shown(app, "#fail-message")
                assert f"another flannel-wizard run is changing this node: pid {os.getpid()}" in message
                assert app.session.node.store.get("/kube-centos/network/config") is None  # nothing touched
        finally:
            held.release()
            shutil.rmtree(app.session.root, ignore_errors=True)

    asyncio.run(main())
