"""The wizard on the engine's test lab (real etcd, a namespace with docker0, the stand-ins): Next
through prefilled pages gives the same plan as `apply --dry-run`, Apply leaves the node exactly as
`apply` does, and saved answers replay to the same plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from tests.nodelab import IGNORE, LabNode, make_node

HOST_GW = """\
version: 1
etcd:
  prefix: /coreos.com/network
  on_existing: replace
network:
  cidr: 10.244.0.0/16
  subnet_len: 24
  service_cidr: 10.96.0.0/12
  backend: {type: host-gw}
docker:
  opts: {individual: false, combined: true, combined_key: DOCKER_NETWORK_OPTIONS, ip_masq: false}
  daemon_json: null
cgroup:
  driver: cgroupfs
smoke_test:
  enabled: false
"""
UDP = """\
version: 1
network:
  cidr: 10.5.0.0/16
  subnet_len: 26
  subnet_min: 10.5.1.0
  subnet_max: 10.5.9.192
  backend: {type: udp, port: 8299}
flanneld:
  iface: lo
  ip_masq: true
cgroup:
  driver: systemd
smoke_test:
  enabled: false
"""


def walk(node: LabNode, answers: str, *extra: str) -> dict:
    argv = node.ns.prefix() + [sys.executable, "-m", "tests.tui_walk", "--answers", answers,
                               "--root", str(node.root), "--ignore", IGNORE, *extra]
    env = {**node.env, "PYTHONPATH": str(lab.REPO)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, env=env, cwd=lab.REPO,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def cli_plan(node: LabNode, answers: str) -> list[list[str]]:
    done = run_wizard("plan", answers, "--root", str(node.root), "--output", "json",
                      "--ignore-preflight-errors", IGNORE, env=node.env, netns=node.ns)
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return [[e["step"], e["change"]["kind"], e["change"]["summary"], e["change"]["diff"], e["change"]["pending_on"]]
            for e in events if e.get("kind") == "change"]


@pytest.mark.parametrize("name", ["config.example.yaml", "host-gw", "udp"])
def test_next_through_prefilled_pages_plans_what_apply_dry_run_plans(node: LabNode, tmp_path: Path, name: str) -> None:
    source = {"host-gw": HOST_GW, "udp": UDP}.get(name)
    path = str(lab.REPO / name) if source is None else str(tmp_path / f"{name}.yaml")
    if source is not None:
        Path(path).write_text(source)
    saved = tmp_path / "saved.yaml"
    result = walk(node, path, "--save", str(saved))
    assert result["pages"] == ["preflight", "etcd", "network", "flanneld", "docker", "cgroup"]
    expected = cli_plan(node, path)
    assert expected, "the plan should change something on a fresh lab node"
    assert result["plan"] == expected
    # the saved answers validate and replay to the same plan
    assert result["saved"] == str(saved)
    valid = run_wizard("validate", str(saved))
    assert valid.returncode == 0, valid.stderr
    assert cli_plan(node, str(saved)) == expected


def test_tui_apply_leaves_the_node_as_apply_does(node: LabNode, standin_env: dict[str, str], tmp_path: Path) -> None:
    # the example's answers without the smoke test: this lab has no API server (test_smoke_step.py has one)
    answers = str(tmp_path / "answers.yaml")
    Path(answers).write_text((lab.REPO / "config.example.yaml").read_text().replace("  enabled: true", "  enabled: false"))
    result = walk(node, answers, "--apply")
    assert result["code"] == 0, result["events"]

    other_root = tmp_path / "other-root"
    other_root.mkdir()
    other_env = {**standin_env, "FW_TEST_ROOT": str(other_root), "FW_STANDIN_LOG": str(tmp_path / "other.log")}
    other = make_node(other_env)
    try:
        done = run_wizard("apply", answers, "--root", str(other_root), "--yes", "--ignore-preflight-errors", IGNORE,
                          env=other_env, netns=other.ns)
        assert done.returncode == 0, done.stdout + done.stderr
        assert node.snapshot() == other.snapshot()
        assert node.subnet_env() == other.subnet_env()
        assert node.bridge() == other.bridge() == {"mtu": 1450, "ipv4": [node.subnet_env()["FLANNEL_SUBNET"]]}
        key = "/kube-centos/network/config"
        assert node.etcd.get(key) == other.etcd.get(key) is not None
        journal = json.loads((node.root / "var/lib/flannel-wizard/journal.json").read_text())
        other_journal = json.loads((other_root / "var/lib/flannel-wizard/journal.json").read_text())
        summaries = [[e["step"], e["summary"], e["state"]] for e in journal["entries"]]
        assert summaries == [[e["step"], e["summary"], e["state"]] for e in other_journal["entries"]]
    finally:
        other.etcd.close()
        other.ns.delete()
