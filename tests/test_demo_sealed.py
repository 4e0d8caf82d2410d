"""The demo is sealed: its journal says it belongs to the simulated node, `undo` on the machine
refuses it and touches nothing, and Finish never offers an undo command for it.

The refusal is proven on real parts: a network namespace holding a docker0 and a real etcd at the
default endpoint 127.0.0.1:2379 with the key the demo journal names (at the revision it names), an
iptables counter on SYNs to etcd's port, and the systemctl stand-in's call log. The control case
runs the same journal without its mark, to show these would see the damage.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_wizard
from tests.nodelab import LabNode
from tests.tui import FAST
from wizard import scenarios
from wizard.answers import Etcd
from wizard.journal import DEFAULT_STATE_DIR, Journal
from wizard.node import CommandsLike, HttpLike, KernelLike, LinksLike, Node, NodeLike
from wizard.node.files import Files
from wizard.node.simulated import SimulatedNode

CONFIG_KEY = "/kube-centos/network/config"
CONFIG = '{"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}'
HOST_BRIDGE = {"mtu": 1500, "ipv4": ["10.88.0.1/16"]}  # this machine's docker0, not the demo's
SYN_RULE = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", "2379", "--syn", "-m", "comment", "--comment", "fwtest-etcd-syn"]


def sim(tmp_path: Path, scenario: str | dict[str, Any] = "fresh-node") -> SimulatedNode:
    profile = scenarios.load(scenario) if isinstance(scenario, str) else scenario
    return SimulatedNode(profile, speed=FAST, root=str(tmp_path / "demo"))


# ---------------------------------------------------------------- identity and the journal


def test_each_node_says_what_it_is(tmp_path: Path) -> None:
    assert Node(str(tmp_path)).identity() == {"kind": "node", "root": str(tmp_path)}
    demo = sim(tmp_path)
    assert demo.identity() == {"kind": "demo", "scenario": "fresh-node", "root": str(tmp_path / "demo")}


def _listed(protocol: type) -> dict[str, Any]:
    """What a protocol lists: its annotated attributes (None) and its methods and properties."""
    out: dict[str, Any] = dict.fromkeys(getattr(protocol, "__annotations__", {}))
    out.update({name: value for name, value in vars(protocol).items()
                if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))})
    return out


@pytest.mark.parametrize("protocol, real, simulated", [
    (CommandsLike, "wizard.node.commands:Commands", "wizard.node.simulated:SimCommands"),
    (KernelLike, "wizard.node.kernel:Kernel", "wizard.node.simulated:SimKernel"),
    (HttpLike, "wizard.node.http:Http", "wizard.node.simulated:_SimHttp"),
    (LinksLike, "wizard.node.links:Links", "wizard.node.simulated:SimLinks"),
])
def test_the_real_and_simulated_parts_take_the_same_calls(protocol: type, real: str, simulated: str) -> None:
    import importlib

    for spec in (real, simulated):
        module, name = spec.split(":")
        cls = getattr(importlib.import_module(module), name)
        for member, wanted in _listed(protocol).items():
            assert list(inspect.signature(getattr(cls, member)).parameters) == \
                list(inspect.signature(wanted).parameters), f"{name}.{member}"


def test_both_nodes_give_what_node_like_lists_and_the_demo_nothing_more_to_the_engine(tmp_path: Path) -> None:
    real, demo = Node(str(tmp_path)), sim(tmp_path)
    for member, wanted in _listed(NodeLike).items():
        for node in (real, demo):
            assert member in dir(node), f"{type(node).__name__} has no {member}"
            if inspect.isfunction(wanted):
                assert list(inspect.signature(getattr(type(node), member)).parameters) == \
                    list(inspect.signature(wanted).parameters), f"{type(node).__name__}.{member}"
    assert real.simulated is False and demo.simulated is True
    assert not hasattr(demo, "follow")  # the demo node learns nothing from the answers: its units decide


def test_a_new_journal_records_its_node_and_an_old_one_is_left_as_it_was(tmp_path: Path) -> None:
    files = Files(str(tmp_path))
    identity = {"kind": "node", "root": str(tmp_path)}
    journal = Journal(files, DEFAULT_STATE_DIR, identity)
    _entry(journal, "etcd", "etcd", "create /k in etcd", {"key": "/k"})
    stored = json.loads((tmp_path / "var/lib/flannel-wizard/journal.json").read_text())
    assert stored["node"] == identity and stored["version"] == 1 and len(stored["entries"]) == 1
    assert Journal(files).belongs_to_demo() is None

    # a journal written before the node was recorded: read as it is, not claimed by whoever opens it
    legacy = tmp_path / "legacy"
    (legacy / "state").mkdir(parents=True, mode=0o700)
    (legacy / "state/journal.json").write_text('{"version": 1, "entries": []}\n')
    old = Journal(Files(str(legacy)), "/state", {"kind": "demo", "scenario": "x", "root": str(legacy)})
    assert old.node is None and old.belongs_to_demo() is None


def test_the_demos_journal_is_marked_even_when_the_caller_passes_no_identity(tmp_path: Path) -> None:
    demo = sim(tmp_path)
    journal = Journal(demo.files, DEFAULT_STATE_DIR)  # as a caller that forgot node.identity() would
    _entry(journal, "flanneld", "restart", "restart flanneld", {"service": "flanneld"})
    assert Journal(Files(demo.root)).belongs_to_demo() == demo.identity()


# ---------------------------------------------------------------- undo refuses a demo journal


def _entry(journal: Journal, step: str, kind: str, summary: str, record: dict[str, Any],
           backup: bytes | None = None) -> dict[str, Any]:
    """A journal entry as the runner leaves it once the change is applied (the shape changes.py records)."""
    entry = {"id": f"{journal.run_id}-{len(journal.entries):03d}", "run": journal.run_id, "step": step,
             "kind": kind, "summary": summary, "state": "applying", "time": "2026-11-20T10:00:00", "record": {}}
    journal.entries.append(entry)
    if backup is not None:
        record = {**record, "backup": journal.backup(entry, backup)}
    journal.finish(entry, "applied", record)
    return entry


@dataclass
class DemoRun:
    root: Path
    journal: Path
    revision: int  # of CONFIG_KEY in the namespace's etcd, as the journal names it


def demo_applied(node: LabNode, tmp_path: Path, marked: bool) -> DemoRun:
    """A demo after Apply: its files changed under its root and its journal recording the etcd write,
    the docker0 move and the restarts — with the namespace's etcd holding that very key at that
    very revision, so an undo that replayed the journal here would delete it."""
    node.etcd.ctl("put", CONFIG_KEY, CONFIG)
    found = json.loads(node.etcd.ctl("get", CONFIG_KEY, "-w", "json").stdout)
    revision = int(found["kvs"][0]["mod_revision"])
    node.ns.ip("addr", "flush", "dev", "docker0")
    node.ns.ip("addr", "add", HOST_BRIDGE["ipv4"][0], "dev", "docker0")
    assert node.bridge() == HOST_BRIDGE

    demo = sim(tmp_path)
    files = demo.files if marked else Files(demo.root)  # unmarked: a journal as written before the seal
    journal = Journal(files, DEFAULT_STATE_DIR, demo.identity() if marked else None)
    env_file = "/etc/sysconfig/flanneld"
    before = files.state(env_file)
    assert before.data is not None
    etcd = Etcd().model_dump(mode="json")
    _entry(journal, "etcd", "etcd", f"create {CONFIG_KEY} in etcd",
           {"key": CONFIG_KEY, "old": None, "new": CONFIG, "revision": revision, "etcd": etcd})
    files.write(env_file, b'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"\nFLANNEL_ETCD_PREFIX="/kube-centos/network"\n')
    _entry(journal, "flanneld", "file", f"update {env_file}",
           {"path": env_file, "existed": True, "mode": before.mode, "uid": before.uid, "gid": before.gid,
            "created_dirs": []}, backup=before.data)
    _entry(journal, "flanneld", "restart", "restart flanneld", {"service": "flanneld"})
    created = files.write("/run/docker_opts.env", b'DOCKER_OPT_BIP="--bip=172.30.1.1/24"\n')
    _entry(journal, "docker", "file", "create /run/docker_opts.env",
           {"path": "/run/docker_opts.env", "existed": False, "created_dirs": created})
    _entry(journal, "docker", "link", "set docker0 to 172.30.1.1/24 mtu 1450",
           {"bridge": "docker0", "ipv4": ["172.17.0.1/16"], "mtu": 1500})
    _entry(journal, "docker", "restart", "restart docker", {"service": "docker"})
    return DemoRun(Path(demo.root), Path(demo.root) / "var/lib/flannel-wizard/journal.json", revision)


def tree(root: Path) -> dict[str, tuple[bytes, int, int] | str]:
    out: dict[str, tuple[bytes, int, int] | str] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = "dir" if path.is_dir() else (path.read_bytes(), st.st_mode, st.st_mtime_ns)
    return out


def etcd_syns(node: LabNode) -> int:
    listing = node.ns.exec("iptables", "-w", "-L", "INPUT", "-v", "-x", "-n").stdout
    line = next(line for line in listing.splitlines() if "fwtest-etcd-syn" in line)
    return int(line.split()[0])


def etcd_key(node: LabNode) -> tuple[str, int] | None:
    found = json.loads(node.etcd.ctl("get", CONFIG_KEY, "-w", "json").stdout).get("kvs")
    if not found:
        return None
    import base64

    return base64.b64decode(found[0]["value"]).decode(), int(found[0]["mod_revision"])


def undo_in_namespace(node: LabNode, run: DemoRun) -> tuple[Any, int]:
    """`flannel-wizard undo` for the demo's root, run where docker0 and etcd are; the SYNs etcd saw."""
    node.ns.exec("iptables", "-w", "-I", *SYN_RULE)
    node.ns.exec("iptables", "-w", "-Z", "INPUT")
    result = run_wizard("undo", "--root", str(run.root), "--state-dir", DEFAULT_STATE_DIR, env=node.env, netns=node.ns)
    return result, etcd_syns(node)


def test_undo_of_a_demo_journal_refuses_and_touches_nothing_on_the_machine(node: LabNode, tmp_path: Path) -> None:
    run = demo_applied(node, tmp_path, marked=True)
    demo_before, host_before = tree(run.root), node.snapshot(mtimes=True)
    host_state = Path(DEFAULT_STATE_DIR)
    host_state_before = tree(host_state) if host_state.exists() else None
    key_before = etcd_key(node)
    assert key_before == (CONFIG, run.revision)

    result, syns = undo_in_namespace(node, run)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        f"error: {run.journal} belongs to the demo (scenario fresh-node): its changes were made to a simulated "
        "node and nothing on this machine was changed — nothing to undo here; remove the demo's files with "
        f"`rm -r {run.root}`\n")
    assert result.stdout == ""
    assert node.bridge() == HOST_BRIDGE  # docker0 not re-addressed
    assert syns == 0  # not even a connection to etcd
    assert etcd_key(node) == key_before  # the key and its revision as they were
    assert not Path(node.env["FW_STANDIN_LOG"]).exists()  # no systemctl call at all
    assert tree(run.root) == demo_before  # the demo's own files and journal untouched too
    assert node.snapshot(mtimes=True) == host_before
    assert (tree(host_state) if host_state.exists() else None) == host_state_before


def test_control_the_same_journal_unmarked_would_have_acted_on_the_machine(node: LabNode, tmp_path: Path) -> None:
    """Without the demo's mark the very same journal re-addresses docker0, deletes the etcd key and
    restarts services here: what the sealed test checks for is what would really happen."""
    run = demo_applied(node, tmp_path, marked=False)

    result, syns = undo_in_namespace(node, run)

    assert result.returncode == 0, result.stdout + result.stderr
    assert node.bridge() == {"mtu": 1500, "ipv4": ["172.17.0.1/16"]}
    assert syns > 0 and etcd_key(node) is None
    calls = Path(node.env["FW_STANDIN_LOG"]).read_text()
    assert "systemctl restart docker" in calls and "systemctl restart flanneld" in calls


def test_undo_never_suggests_removing_more_than_the_demo_wrote(tmp_path: Path) -> None:
    """A demo journal copied elsewhere (its recorded root not around it): the fix names the state dir
    that holds it, never the recorded root and never /."""
    from wizard.cli import main

    state = tmp_path / "copied"
    journal = Journal(Files(str(tmp_path)), "/copied", {"kind": "demo", "scenario": "etcd-down", "root": "/"})
    _entry(journal, "docker", "link", "set docker0", {"bridge": "docker0", "ipv4": ["172.17.0.1/16"], "mtu": 1500})
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["undo", "--root", str(tmp_path), "--state-dir", "/copied"])
    assert code == 2
    assert "belongs to the demo (scenario etcd-down)" in err.getvalue()
    assert err.getvalue().endswith(f"remove the demo's files with `rm -r {state}`\n")


# ---------------------------------------------------------------- the simulated systemd


def test_restarting_a_unit_that_does_not_exist_answers_as_systemctl_does(tmp_path: Path) -> None:
    demo = sim(tmp_path)
    result = demo.commands.run("systemctl", "restart", "flanneld-custom")
    assert (result.rc, result.out, result.err) == (
        5, "", "Failed to restart flanneld-custom.service: Unit flanneld-custom.service not found.")
    assert demo.commands.run("systemctl", "start", "nosuch.service").err == \
        "Failed to start nosuch.service: Unit nosuch.service not found."


def test_the_packaged_units_are_on_the_demo_root(tmp_path: Path) -> None:
    demo = sim(tmp_path)
    unit = demo.files.read_text("/usr/lib/systemd/system/flanneld.service") or ""
    assert "EnvironmentFile=/etc/sysconfig/flanneld\nEnvironmentFile=-/etc/sysconfig/docker-network\n" in unit
    assert "ExecStart=/usr/bin/dockerd" in (demo.files.read_text("/usr/lib/systemd/system/docker.service") or "")
    assert demo.files.exists("/usr/lib/systemd/system/kubelet.service")
    assert not demo.files.exists("/usr/lib/systemd/system/containerd.service")  # not installed in fresh-node


def _with(base: str, **over: Any) -> dict[str, Any]:
    profile = scenarios.load(base)
    for key, value in over.items():
        profile[key] = {**profile.get(key, {}), **value} if isinstance(value, dict) else value
    return profile


def test_flanneld_reads_the_env_file_its_drop_in_names_not_the_packaged_one(tmp_path: Path) -> None:
    profile = _with("fresh-node", files={
        "/etc/systemd/system/flanneld.service.d/10-env.conf":
            "[Service]\n# replace the packaged list\nEnvironmentFile=\nEnvironmentFile=/etc/flannel/options.env\n",
        "/etc/flannel/options.env":
            'FLANNEL_ETCD_PREFIX="/custom/network"\nFLANNEL_OPTIONS="-subnet-file=/run/custom/subnet.env -ip-masq"\n',
    })
    profile["etcd"] = {**profile["etcd"], "keys": {"/custom/network/config": CONFIG}}
    demo = sim(tmp_path, profile)
    assert demo.commands.run("systemctl", "restart", "flanneld").rc == 0
    env = demo.files.read_text("/run/custom/subnet.env") or ""
    assert "FLANNEL_SUBNET=172.30." in env and "FLANNEL_IPMASQ=true" in env
    assert not demo.files.exists("/run/flannel/subnet.env")
    assert demo.store.list("/custom/network/subnets/")  # its lease, under the prefix the drop-in's file gave


def test_a_unit_in_etc_overrides_the_package_and_its_env_file_must_exist(tmp_path: Path) -> None:
    profile = _with("fresh-node", files={
        "/etc/systemd/system/flanneld.service":
            "[Service]\nEnvironment=FLANNEL_OPTIONS=-subnet-file=/run/x/subnet.env\n"
            "EnvironmentFile=/etc/default/flanneld\nExecStart=/usr/bin/flanneld-start $FLANNEL_OPTIONS\n",
    })
    demo = sim(tmp_path, profile)
    result = demo.commands.run("systemctl", "restart", "flanneld")
    assert result.rc == 1 and result.err.startswith(
        "Job for flanneld.service failed because of unavailable resources or another system error.")
    assert "/etc/default/flanneld" in demo.unit_log["flanneld.service"]
    demo.files.write("/etc/default/flanneld", b'FLANNEL_ETCD_PREFIX="/kube-centos/network"\n')
    demo.store.put(CONFIG_KEY, CONFIG)
    assert demo.commands.run("systemctl", "restart", "flanneld").rc == 0
    assert demo.files.exists("/run/x/subnet.env")


def test_scenario_units_replace_or_remove_the_packaged_ones(tmp_path: Path) -> None:
    docker = ("[Service]\nExecStart=/usr/bin/dockerd --config-file /etc/docker/custom.json\n")
    profile = _with("fresh-node", units={"docker.service": docker, "kubelet.service": None}, files={
        "/etc/docker/custom.json": '{"bip": "10.9.0.1/24", "mtu": 1400, "exec-opts": ["native.cgroupdriver=systemd"]}\n',
    })
    demo = sim(tmp_path, profile)
    assert demo.docker_driver == "systemd"  # the running dockerd read the file its unit names
    assert demo.commands.run("systemctl", "restart", "docker").rc == 0
    bridge = demo.links.link("docker0")
    assert bridge is not None and (bridge.ipv4, bridge.mtu) == (("10.9.0.1/24",), 1400)
    assert demo.commands.run("systemctl", "restart", "kubelet").rc == 5


def test_dockerd_refuses_a_setting_given_as_a_flag_and_in_its_file(tmp_path: Path) -> None:
    profile = _with("fresh-node", files={
        "/etc/systemd/system/docker.service.d/20-bip.conf":
            "[Service]\nEnvironmentFile=-/run/docker_opts.env\nExecStart=\n"
            "ExecStart=/usr/bin/dockerd $DOCKER_OPTS\n",
        "/run/docker_opts.env": 'DOCKER_OPTS=" --bip=172.30.1.1/24 --mtu=1450"\n',
        "/etc/docker/daemon.json": '{"bip": "172.30.9.1/24"}\n',
    })
    demo = sim(tmp_path, profile)
    result = demo.commands.run("systemctl", "restart", "docker")
    assert result.rc == 1 and result.err.startswith("Job for docker.service failed because the control process exited")
    assert ("the following directives are specified both as a flag and in the configuration file: "
            "bip: (from flag: 172.30.1.1/24, from file: 172.30.9.1/24)") in demo.unit_log["docker.service"]
    demo.files.write("/etc/docker/daemon.json", b"{}\n")
    assert demo.commands.run("systemctl", "restart", "docker").rc == 0
    bridge = demo.links.link("docker0")
    assert bridge is not None and (bridge.ipv4, bridge.mtu) == (("172.30.1.1/24",), 1450)


# ---------------------------------------------------------------- Finish


def test_finish_names_the_real_journal_and_an_undo_command_that_pastes(tmp_path: Path) -> None:
    from wizard.cli import build_parser
    from wizard.session import Session

    lines = dict(Session(Node("/")).undo_advice())
    assert lines == {"Journal and backups": "/var/lib/flannel-wizard/journal.json", "Undo everything": "flannel-wizard undo"}

    root = tmp_path / "staging root"
    lines = dict(Session(Node(str(root)), state_dir="/srv/wizard state").undo_advice())
    assert lines["Journal and backups"] == f"{root}/srv/wizard state/journal.json"
    argv = shlex.split(lines["Undo everything"])
    args = build_parser().parse_args(argv[1:])
    assert argv[0] == "flannel-wizard" and (args.command, args.root, args.state_dir) == ("undo", str(root), "/srv/wizard state")


def test_finish_on_the_demo_offers_no_undo_command(tmp_path: Path) -> None:
    from wizard.session import Session

    demo = sim(tmp_path)
    lines = Session(demo, scenario=demo.scenario).undo_advice()
    text = "\n".join(f"{label}: {line}" for label, line in lines)
    assert "flannel-wizard undo" not in text
    assert "Journal and backups: var/lib/flannel-wizard/journal.json in that directory" in text
    assert f"the demo changed only files under {demo.root} and an in-memory etcd" in text
    assert "Nothing on this machine needs undoing" in text
    assert "Roll back on the Apply page reverses the demo's changes within the demo" in text
    assert f"(with --keep they stay: `rm -r {shlex.quote(demo.root)}`)" in text
    assert os.path.isdir(demo.root)


def test_a_real_apply_will_not_record_its_changes_in_the_demos_journal(tmp_path: Path) -> None:
    """`apply --root DEMO_DIR` would add real changes to a journal that undo then refuses to replay."""
    from wizard.changes import Restart
    from wizard.errors import InputError

    demo = sim(tmp_path)
    demo_journal = Journal(demo.files, DEFAULT_STATE_DIR, demo.identity())
    entry = demo_journal.begin(Restart("flanneld", True), "flanneld")
    demo_journal.finish(entry, "applying", {"service": "flanneld"})  # on disk before its change, as apply does
    real = Node(demo.root)
    journal = Journal(real.files, DEFAULT_STATE_DIR, real.identity())
    with pytest.raises(InputError, match="belongs to the demo; nothing was changed"):
        journal.begin(Restart("docker", True), "docker")
    assert len(json.loads((Path(demo.root) / "var/lib/flannel-wizard/journal.json").read_text())["entries"]) == 1


# ---------------------------------------------------------------- the mesh: simulated probes, nothing sent

SEALED_RUN = r'''
import json, sys

seen = []


def hook(event, args):
    # every socket made or used, and any import of what the real node probes and reads links with
    if event.startswith("socket."):
        seen.append(event)
    elif event == "import" and str(args[0]).split(".")[0] == "pyroute2" or \
            event == "import" and str(args[0]) in ("wizard.node.links", "wizard.node.overlay", "wizard.node.probes"):
        seen.append(f"import {args[0]}")


sys.addaudithook(hook)

from wizard import scenarios, steps
from wizard.node.meshinfo import Probe
from wizard.node.simulated import SimulatedNode
from wizard.session import Session

node = SimulatedNode(scenarios.load("mesh-broken"), speed=float(sys.argv[2]), root=sys.argv[1])
session = Session(node, scenario=node.scenario)
answers = session.answers()
applied = session.runner(answers, lambda e: None, dry_run=False).run()
checked = session.check(lambda e: None) if hasattr(session, "check") else None
probes = [Probe("icmp", "192.168.56.13"), Probe("udp", "192.168.56.13", port=8472), Probe("icmp", "172.30.40.0"),
          Probe("icmp", "172.30.27.0", size=1422, df=True)]
answered = [r.outcome for r in node.mesh.probe(probes, 1.0)]
demo_seen = list(seen)
import socket  # the control: the hook does see a socket made here

socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
print(json.dumps({"seen": demo_seen, "control": seen[len(demo_seen):], "steps": [s.name for s in applied.steps], "mesh_ran": "mesh" in steps.ORDER,
                  "checked": checked is not None and [s.name for s in checked.steps], "answered": answered}))
'''


def test_the_demos_mesh_sends_nothing_and_reads_no_link_on_this_machine(tmp_path: Path) -> None:
    """The whole demo apply (and check) on mesh-broken, probes and all, in a process that audits itself:
    not one socket is made, and neither pyroute2 nor the real node's link and probe modules are imported."""
    import subprocess
    import sys

    from tests import lab

    result = subprocess.run([sys.executable, "-c", SEALED_RUN, str(tmp_path / "demo"), str(FAST)], capture_output=True,
                            text=True, timeout=120, cwd=lab.REPO, env={**os.environ, "PYTHONPATH": str(lab.REPO)})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["answered"] == ["answered", "silent", "silent", "answered"]  # the probes ran, simulated
    if out["mesh_ran"]:
        assert "mesh" in out["steps"] and "mesh" in out["checked"]
    assert out["seen"] == []
    assert "socket.__new__" in out["control"]
