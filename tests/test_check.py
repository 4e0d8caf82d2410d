"""`flannel-wizard check` on one real node (namespace, real etcd, the stand-ins): it reports what is not as
the answers say and what does not work, with the exit codes it documents, and changes nothing at all."""

from __future__ import annotations

import json

from tests.conftest import run_wizard
from tests.nodelab import IGNORE, LabNode

FILE = "config.example.yaml"


def check(node: LabNode, *extra: str, ignore: bool = True):
    flags = ["--ignore-preflight-errors", IGNORE] if ignore else []
    return run_wizard("check", FILE, "--root", str(node.root), "--skip", "smoke", *flags, *extra,
                      env=node.env, netns=node.ns)


def apply(node: LabNode):
    done = run_wizard("apply", FILE, "--root", str(node.root), "--yes", "--ignore-preflight-errors", IGNORE,
                      "--skip", "smoke", env=node.env, netns=node.ns)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def state(node: LabNode) -> tuple[object, ...]:
    """Everything a check could change: files (with mtimes), etcd's keys, the bridge, the stand-ins' log."""
    log = node.root.parent / "standin.log"
    return (node.snapshot(mtimes=True), node.etcd.get("/kube-centos/network/config"), node.bridge(),
            log.read_text() if log.exists() else "", (node.root / "var/lib/flannel-wizard").exists())


def result_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])["result"]


def test_a_fresh_node_has_problems_each_with_its_fix_and_nothing_changes(node: LabNode) -> None:
    before = state(node)
    found = check(node)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "not as the answers say: it would" in found.stdout
    assert "flannel-wizard apply FILE --only etcd" in found.stdout
    assert "check:" in found.stdout and "problem(s) in" in found.stdout
    assert state(node) == before  # no journal dir, no restart, no etcd key


def test_after_apply_the_node_is_healthy_and_the_check_changes_nothing(node: LabNode) -> None:
    apply(node)
    journal = (node.root / "var/lib/flannel-wizard/journal.json").read_bytes()
    before = state(node)
    found = check(node, "--output", "json")
    assert found.returncode == 0, found.stdout + found.stderr
    result = result_of(found.stdout)
    assert result["mode"] == "check" and result["status"] == "ok" and result["code"] == 0
    statuses = {s["name"]: s["status"] for s in result["steps"]}
    assert statuses["mesh"] == "ok" and statuses["docker"] == "ok" and "smoke" not in statuses
    assert all(s["changes"] == [] for s in result["steps"])
    assert state(node) == before
    assert (node.root / "var/lib/flannel-wizard/journal.json").read_bytes() == journal


def test_drift_after_apply_is_named_with_the_apply_that_fixes_it(node: LabNode) -> None:
    apply(node)
    daemon = node.root / "etc/docker/daemon.json"
    data = json.loads(daemon.read_text())
    data["mtu"] = 1500
    daemon.write_text(json.dumps(data))
    before = state(node)
    found = check(node, "--output", "json")
    assert found.returncode == 1
    docker = next(s for s in result_of(found.stdout)["steps"] if s["name"] == "docker")
    assert docker["status"] == "failed"
    problem = next(c for c in docker["checks"] if c["status"] == "failed")
    assert "daemon.json" in problem["message"] and "apply FILE --only docker" in problem["detail"]
    assert state(node) == before


def test_preflight_errors_exit_3_and_bad_input_exits_2(node: LabNode) -> None:
    found = check(node, "--only", "preflight", ignore=False)
    assert found.returncode == 3, found.stdout + found.stderr
    bad = run_wizard("check", "no-such-answers.yaml", env=node.env, netns=node.ns)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    empty = run_wizard("check", FILE, "--only", "mesh", "--skip", "mesh", env=node.env, netns=node.ns)
    assert empty.returncode == 2 and "no step to check" in empty.stderr
