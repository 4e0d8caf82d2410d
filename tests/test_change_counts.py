"""What an operator confirms is what apply does: the number of changes `plan` and Review show equals the
number apply makes, on the lab node (three answer files) and on every demo scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import unitfixtures
from tests.conftest import run_wizard
from tests.nodelab import IGNORE, LabNode
from tests.test_tui_lab import HOST_GW, UDP
from wizard import scenarios
from wizard.events import EVENTS_VERSION


def _result(stdout: str) -> dict:
    lines = [json.loads(line) for line in stdout.splitlines()]
    closing = lines[-1]["result"]
    assert closing["version"] == EVENTS_VERSION
    return closing


@pytest.mark.parametrize("name", ["config.example.yaml", "host-gw", "udp", "centos7-flannel"])
def test_plan_counts_what_apply_makes_on_the_lab_node(node: LabNode, tmp_path: Path, name: str) -> None:
    source = {"host-gw": HOST_GW, "udp": UDP}.get(name)
    units = name == "centos7-flannel"
    if units:  # flanneld's unit, whose ExecStartPost= the docker step follows (the stand-in does not run it)
        unitfixtures.install(node.root, name)
        name = "config.example.yaml"
    path = name if source is None else str(tmp_path / f"{name}.yaml")
    if source is not None:
        Path(path).write_text(source)
    common = ("--root", str(node.root), "--ignore-preflight-errors", IGNORE, "--skip", "smoke", "--output", "json")
    planned = run_wizard("plan", path, *common, env=node.env, netns=node.ns)
    assert planned.returncode == 0, planned.stdout[-2000:] + planned.stderr
    plan = _result(planned.stdout)
    applied = run_wizard("apply", path, "--yes", *common, env=node.env, netns=node.ns)
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr
    done = _result(applied.stdout)
    print(f"{name}: planned {plan['planned']}, applied {done['applied']}")
    assert plan["planned"] == done["applied"] > 0
    # step by step, too: the docker step's changes were listed before flanneld had its lease
    per_step = {s["name"]: len([c for c in s["changes"] if c["state"] in ("planned", "pending")]) for s in plan["steps"]}
    made = {s["name"]: len([c for c in s["changes"] if c["state"] in ("applied", "rolled-back")]) for s in done["steps"]}
    assert per_step == made
    if units:  # the file flanneld's ExecStartPost= writes, with its -k, and the plan line says so
        docker = next(s for s in plan["steps"] if s["name"] == "docker")
        assert any("flanneld's ExecStartPost" in json.dumps(c) for c in docker["changes"]), docker["changes"]
        env = node.subnet_env()
        assert f'DOCKER_NETWORK_OPTIONS=" --bip={env["FLANNEL_SUBNET"]}' in (node.root / "run/flannel/docker").read_text()
    again = run_wizard("plan", path, *common, env=node.env, netns=node.ns)
    assert _result(again.stdout)["planned"] == 0  # and once applied, nothing is left to do


# where a demo scenario's apply fails on purpose (the rest run to the end)
STOPS = {"smoke-fails": "smoke", "mesh-broken": "mesh"}


@pytest.mark.parametrize("name", scenarios.names())
def test_plan_counts_what_apply_makes_on_each_demo_scenario(name: str) -> None:
    from wizard.node.simulated import SimulatedNode
    from wizard.session import Session

    scenario = scenarios.load(name)
    node = SimulatedNode(scenario, speed=100)
    try:
        session = Session(node, scenario=scenario)
        if name == "existing-config":
            session.set(("etcd", "on_existing"), "replace")  # the choice its Review asks for
        if name == "etcd-down":
            node.store.down = False  # the operator started etcd (the plan assumed it would answer)
        answers = session.answers()
        plan = session.plan_all(answers)
        assert plan.failed_step is None, plan.failed_step
        result = session.runner(answers, lambda e: None, dry_run=False).run()
        print(f"{name}: planned {plan.planned}, applied {result.applied} ({result.message})")
        # mesh-broken's run stops at the mesh step, after every change it makes: the smoke test's test
        # objects, which come after, are planned and never made; every step that ran made what it planned
        stops = STOPS.get(name)
        assert (result.failed_step.name if result.failed_step else None) == stops
        ran = {s.name for s in result.steps}
        assert ran == {s.name for s in plan.steps} or stops is not None
        assert sum(len(s.planned) for s in plan.steps if s.name in ran) == result.applied > 0
        assert {s.name: len(s.planned) for s in plan.steps if s.name in ran} == {
            s.name: len([c for c in s.changes if c.state in ("applied", "rolled-back")]) for s in result.steps}
    finally:
        import shutil

        shutil.rmtree(node.root, ignore_errors=True)
