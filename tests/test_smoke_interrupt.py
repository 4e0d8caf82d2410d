"""The smoke step's cluster objects under interruption, with real processes: Ctrl+C during the readiness
wait rolls the step back (objects deleted, journal says so) and exits 130 within a second; kill -9
after the deploy leaves a journal entry that `undo` reverses by deleting exactly the objects carrying
that entry's label — never a same-named object someone else made, nor another run's objects.

Same parts as test_smoke_step: the real `kubectl` against the API stand-in in "pending" mode (pods
never get ready, so the wizard sits in its readiness wait), the wizard run in the node namespace.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import lab
from tests import test_smoke_step as base
from tests.podlab import PODS

cluster = base.cluster  # the fixtures of test_smoke_step, used here under the same names
smoke = base.smoke
Smoke = base.Smoke

OBJECTS = ("deployment/nginx", "service/example-service")
ENV_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Wizard:
    """`flannel-wizard apply --only smoke --output json` as a running process whose events are read as
    they come (a thread per pipe), so the test can act at a given event and wait on conditions."""

    def __init__(self, smoke: Smoke, timeout_s: float = 60, process_group: bool = False) -> None:
        answers = smoke.tmp / "answers.yaml"
        answers.write_text(
            "version: 1\nsmoke_test:\n  kubeconfig: /etc/kubernetes/admin.conf\n  container_port: 8080\n"
            f"  timeout_s: {timeout_s}\n")
        argv = smoke.cluster.node.prefix() + lab.wizard_argv("apply", str(answers), "--only", "smoke", "--yes",
                                                             "--root", str(smoke.root), "--output", "json")
        # `ip netns exec` execs the command: the pid is the wizard's own
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL, cwd=lab.REPO, start_new_session=process_group,
                                     env={"PATH": ENV_PATH, "HOME": str(smoke.tmp), "PYTHONPATH": str(lab.REPO)})
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, put: Callable[[Any], None]) -> None:
        for line in stream:
            put(line)
        put(None)

    def _err(self, line: str | None) -> None:
        if line is not None:
            self.stderr.append(line)

    def wait_event(self, matches: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """Read events until one matches; fail (with what was seen) at the deadline or if the output ends."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout}s; saw:\n{self.seen()}") from None
            if line is None:
                raise AssertionError(f"the wizard ended (rc {self.proc.wait()}) before {what}; saw:\n{self.seen()}\n"
                                     f"stderr:\n{''.join(self.stderr)}")
            event = json.loads(line)
            self.events.append(event)
            if matches(event):
                return event

    def finish(self, timeout: float) -> int:
        """Wait for the exit and for both pipes to be read to the end."""
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.events.append(json.loads(line))
        return code

    def seen(self) -> str:
        return "\n".join(f"{e.get('kind')} {e.get('status')} {e.get('message')}" for e in self.events[-20:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def wizards() -> Iterator[list[Wizard]]:
    """Every wizard a test starts is killed and reaped at the end, pass or fail."""
    started: list[Wizard] = []
    try:
        yield started
    finally:
        for wizard in started:
            wizard.close()


def start(smoke: Smoke, wizards: list[Wizard], **kw: Any) -> Wizard:
    wizard = Wizard(smoke, **kw)
    wizards.append(wizard)
    return wizard


def start_api(smoke: Smoke, *extra: str) -> None:
    """Smoke.start_api(mode="pending") with the stand-in's further options."""
    argv = smoke.cluster.node.prefix() + [sys.executable, str(lab.STANDINS / "kubeapi.py"), "--port", str(base.API_PORT),
                                          "--pod-ips", ",".join(PODS), "--mode", "pending", "--kube-proxy", *extra]
    smoke.api = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert smoke.api.stdout is not None and smoke.api.stdout.readline().strip() == "listening"


def kubectl(smoke: Smoke, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(smoke.cluster.node.prefix() + [
        "kubectl", "--kubeconfig", str(smoke.root / "etc/kubernetes/admin.conf"), *args],
        input=input, text=True, capture_output=True, timeout=30, env={"PATH": ENV_PATH, "HOME": str(smoke.tmp)})
    if check:
        assert done.returncode == 0, done.stderr
    return done


def existing(smoke: Smoke) -> list[str]:
    return kubectl(smoke, "get", *OBJECTS, "--ignore-not-found", "-o", "name").stdout.split()


def journal(smoke: Smoke) -> list[dict[str, Any]]:
    return json.loads((smoke.root / "var/lib/flannel-wizard/journal.json").read_text())["entries"]


def undo(smoke: Smoke) -> subprocess.CompletedProcess[str]:
    return subprocess.run(smoke.cluster.node.prefix() + lab.wizard_argv("undo", "--root", str(smoke.root)),
                          capture_output=True, text=True, timeout=60, cwd=lab.REPO, stdin=subprocess.DEVNULL,
                          env={"PATH": ENV_PATH, "HOME": str(smoke.tmp), "PYTHONPATH": str(lab.REPO)})


def is_sub(index: int, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (e.get("kind") == "substep" and e["substep"]["index"] == index and e["status"] == status)


def deployed(e: dict[str, Any]) -> bool:
    return (is_sub(2, "ok")(e) or
            (e.get("kind") == "change" and e["change"]["kind"] == "kube" and e["change"]["state"] == "applied"))


def kubectl_children(pid: int) -> list[int]:
    """The wizard's kubectl calls in flight (children of the wizard named kubectl)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "kubectl":
                    out.append(int(child))
            except OSError:
                continue
    return out


def kill_after_deploy(smoke: Smoke, wizards: list[Wizard]) -> dict[str, Any]:
    """Start the smoke step, SIGKILL it once the objects are created; returns the kube journal entry."""
    smoke.start_api(mode="pending")
    wizard = start(smoke, wizards)
    wizard.wait_event(deployed, 30, "the deploy sub-step's ok")
    wizard.proc.send_signal(signal.SIGKILL)
    assert wizard.finish(10) == -signal.SIGKILL
    kube = [e for e in journal(smoke) if e["kind"] == "kube"]
    # what a crash leaves for undo: the entry with its record, written before the objects were created; its
    # `applied` waits in memory for the journal's next write, and undo reverses an `applying` entry alike
    assert len(kube) == 1 and kube[0]["state"] in ("applying", "applied"), kube
    assert kube[0]["record"]["names"] == ["deployment/nginx", "service/example-service"], kube
    assert sorted(existing(smoke)) == ["deployment.apps/nginx", "service/example-service"]
    return kube[0]


def interrupted_in_readiness_wait(smoke: Smoke, wizard: Wizard, interrupt: Callable[[], None]) -> float:
    """Common part of the Ctrl+C tests: returns the seconds from the signal to the wizard's exit."""
    wizard.wait_event(is_sub(4, "running"), 30, "sub-step 4 'endpoints ready' running")
    interrupt()
    sent = time.monotonic()
    code = wizard.finish(10)
    took = time.monotonic() - sent
    stderr = "".join(wizard.stderr)
    assert "Traceback" not in stderr, stderr
    assert code == 130, f"rc {code}\n{wizard.seen()}\n{stderr}"
    assert existing(smoke) == []
    kube = [e for e in journal(smoke) if e["kind"] == "kube"]
    assert [e["state"] for e in kube] == ["rolled-back"], kube
    ready = [e for e in wizard.events if is_sub(4, "failed")(e)]
    assert ready and ready[-1]["message"] == "4/8 endpoints ready: interrupted"
    result = wizard.events[-1]["result"]
    assert result["code"] == 130 and result["message"] == "interrupted: the step in flight was rolled back"
    return took


def test_ctrl_c_in_the_readiness_wait_rolls_back_and_exits_130_within_a_second(
        smoke: Smoke, wizards: list[Wizard]) -> None:
    smoke.start_api(mode="pending")
    wizard = start(smoke, wizards, timeout_s=60)
    took = interrupted_in_readiness_wait(smoke, wizard, lambda: wizard.proc.send_signal(signal.SIGINT))
    print(f"SIGINT to exit: {took:.3f}s")
    assert took < 1.0


def test_ctrl_c_from_a_terminal_reaches_kubectl_too_and_still_rolls_back(
        smoke: Smoke, wizards: list[Wizard]) -> None:
    """A terminal's Ctrl+C signals the whole foreground process group: the kubectl call in flight dies
    of it as well. That is still an interrupt, not a failed sub-step."""
    smoke.start_api(mode="pending")
    wizard = start(smoke, wizards, timeout_s=60, process_group=True)
    pid = wizard.proc.pid

    def ctrl_c() -> None:
        lab.wait_for(lambda: bool(kubectl_children(pid)), 10, "a readiness poll's kubectl in flight", interval=0.002)
        os.killpg(pid, signal.SIGINT)

    took = interrupted_in_readiness_wait(smoke, wizard, ctrl_c)
    print(f"SIGINT (process group, kubectl in flight) to exit: {took:.3f}s")
    assert took < 1.0


def test_kill_9_after_the_deploy_then_undo_deletes_the_objects(smoke: Smoke, wizards: list[Wizard]) -> None:
    entry = kill_after_deploy(smoke, wizards)
    smoke.etcd.close()  # undo of the cluster objects needs kubectl and the API server, not etcd
    done = undo(smoke)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "deleted deployment/nginx and service/example-service" in done.stdout, done.stdout
    assert existing(smoke) == []
    assert [e["state"] for e in journal(smoke) if e["id"] == entry["id"]] == ["undone"]
    again = undo(smoke)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to undo" in again.stdout, again.stdout


FOREIGN_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "labels": {"team": "web"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"team": "web"}},
             "template": {"metadata": {"labels": {"team": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}


def test_undo_deletes_only_the_objects_of_its_own_journal_entry(smoke: Smoke, wizards: list[Wizard]) -> None:
    entry = kill_after_deploy(smoke, wizards)
    kubectl(smoke, "delete", *OBJECTS)
    # somebody else's deployment of the same name, without the wizard's labels
    kubectl(smoke, "create", "-f", "-", "--validate=false", input=json.dumps(FOREIGN_DEPLOYMENT))
    # and a service of the same name from another wizard run: the wizard's labels, another entry's id
    label = entry["record"]["label"]
    assert label == entry["id"]
    other = {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "example-service", "labels": {"app.kubernetes.io/managed-by": "flannel-wizard",
                                                                 "flannel-wizard/change": label + "x"}},
             "spec": {"type": "NodePort", "selector": {"team": "web"},
                      "ports": [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]}}
    kubectl(smoke, "create", "-f", "-", "--validate=false", input=json.dumps(other))
    done = undo(smoke)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "deployment/nginx, service/example-service already gone" in done.stdout, done.stdout
    assert sorted(existing(smoke)) == ["deployment.apps/nginx", "service/example-service"]
    labels = json.loads(kubectl(smoke, "get", "deployment/nginx", "-o", "json").stdout)["metadata"]["labels"]
    assert labels == {"team": "web"}
    assert [e["state"] for e in journal(smoke) if e["id"] == entry["id"]] == ["undone"]


def test_a_create_that_half_works_leaves_nothing_behind(smoke: Smoke, wizards: list[Wizard]) -> None:
    """kubectl creates the Deployment, then the API server refuses the Service: the Deployment the
    wizard did create must not outlive the failed step, or at least must be within undo's reach."""
    start_api(smoke, "--refuse-create", "services")
    wizard = start(smoke, wizards)
    assert wizard.finish(60) == 1, wizard.seen()
    deploy = [e for e in wizard.events if is_sub(2, "failed")(e)]
    assert deploy and "services is forbidden" in deploy[-1]["message"], wizard.seen()
    if existing(smoke):  # not removed on the spot: then undo must remove it
        done = undo(smoke)
        assert done.returncode == 0, done.stdout + done.stderr
    assert existing(smoke) == []
