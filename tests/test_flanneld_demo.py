"""The demo's node starts flanneld as a real one would: from its unit (wrapper or upstream binary), reading
the etcd store its version reads. The whole engine runs against it, as `flannel-wizard demo` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wizard import scenarios
from wizard.answers import parse
from wizard.events import StepEvent
from wizard.journal import Journal
from wizard.node.simulated import SimulatedNode
from wizard.runner import Runner
from wizard.steps import Context

FAST = 1000.0
UPSTREAM = """\
[Service]
Type=notify
EnvironmentFile=-/etc/default/flanneld
ExecStart=/usr/bin/flanneld
"""


def run(tmp_path: Path, profile: dict[str, Any], names: list[str], text: str = "") -> tuple[int, list[StepEvent], SimulatedNode]:
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    events: list[StepEvent] = []
    ctx = Context(parse("version: 1\n" + text), node, emit=events.append)
    code = Runner(ctx, Journal(node.files, node_identity=node.identity()), names).run().code
    return code, events, node


def test_old_flanneld_in_the_demo_reads_the_v2_store(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["flanneld_version"] = "0.7.1"
    code, events, node = run(tmp_path, profile, ["etcd", "flanneld"])
    assert code == 0, [(e.status, e.message) for e in events]
    assert any(e.message.endswith("(v2 keys API)") for e in events)
    assert node.store_v2.get("/kube-centos/network/config") is not None
    assert node.store.get("/kube-centos/network/config") is None
    assert node.store_v2.list("/kube-centos/network/subnets/")  # its lease is there too


def test_a_v3_config_is_not_seen_by_the_demos_old_flanneld(tmp_path: Path) -> None:
    profile = scenarios.load("existing-config")  # PREFIX/config put with the v3 API
    profile["flanneld_version"] = "0.7.1"
    node = SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))
    node.files.write("/etc/sysconfig/flanneld", b'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"\n'
                                                b'FLANNEL_ETCD_PREFIX="/kube-centos/network"\n')
    started = node.commands.run("systemctl", "restart", "flanneld")
    assert started.rc == 1
    assert node.unit_log["flanneld.service"].startswith("Couldn't fetch network config: 100: Key not found")


def test_the_demo_runs_an_upstream_flanneld_unit_from_flanneld_variables(tmp_path: Path) -> None:
    profile = scenarios.load("fresh-node")
    profile["units"] = {"flanneld.service": UPSTREAM}
    code, events, node = run(tmp_path, profile, ["etcd", "flanneld"], "flanneld: {subnet_file: /run/flannel/demo.env}\n")
    assert code == 0, [(e.status, e.message) for e in events]
    assert any("runs the flanneld binary itself" in e.message for e in events)
    env = node.files.read_text("/etc/sysconfig/flanneld") or ""
    assert 'FLANNELD_ETCD_PREFIX="/kube-centos/network"' in env
    assert node.files.read_text("/etc/systemd/system/flanneld.service.d/90-flannel-wizard-env.conf")
    assert node.files.exists("/run/flannel/demo.env")  # FLANNELD_SUBNET_FILE reached the simulated flanneld
    leases = node.store.list("/kube-centos/network/subnets/")
    assert [json.loads(v)["PublicIP"] for _k, v in leases].count("192.168.56.11") == 1


def test_an_iface_given_as_an_address_must_be_one_of_this_nodes(tmp_path: Path) -> None:
    """flanneld's -iface takes an IP address as well as a name: preflight and the flanneld step both accept
    this node's own (eth0 has 192.168.56.11 in fresh-node) and refuse another."""
    from wizard.steps import flanneld, preflight

    node = SimulatedNode(scenarios.load("fresh-node"), speed=FAST, root=str(tmp_path / "demo"))
    for iface, there in (("192.168.56.11", True), ("10.9.9.9", False)):
        ctx = Context(parse(f"version: 1\nflanneld: {{iface: {iface}}}\n"), node)
        found = next(f for f in preflight.findings(ctx) if f.name == f"Interface-{iface}")
        assert found.ok is there
        plan = flanneld.plan(ctx.answers, flanneld.inspect(ctx))
        assert plan.failed is not there
        if not there:
            assert plan.notes[0].message == "flanneld.iface 10.9.9.9 does not exist on this node"
            assert plan.notes[0].detail.startswith("choose one of: 192.168.56.11 (eth0)")
