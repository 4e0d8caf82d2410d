"""Issue 13: the fleet rollout on Ansible, from real parts. ansible-core (PyPI) is the controller, run in the
lab's underlay namespace; three node namespaces (tests/meshlab.py) each run Debian's sshd on their own
address, with host keys and an authorized key made here (the controller knows those host keys: strict
checking against a known_hosts file of this test's own); one real etcd on the underlay; on the nodes the
project's stand-ins for systemctl, docker and flanneld, where systemctl's `restart flanneld` runs the lab's
vxlan flanneld (FW_FLANNELD_DAEMON), so the mesh check at the end of each batch meets real vxlan state.
The role installs flannel-wizard on every node from a wheelhouse built here, into a venv of its own.

The tests run in file order on one fleet (--check, a failed rollout, a converging run and a second one, a
broken mesh, undo, the module's check mode); each says what it starts from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from tests import lab
from tests.meshlab import UNDERLAY, MeshLab, MeshNode
from tests.nodelab import IGNORE, SEED_DAEMON_JSON, SEED_ENV, seed_root
from wizard.events import EVENTS_VERSION
from wizard.events import schema as events_schema

BIN = Path(sys.executable).parent
PLAYBOOK = BIN / "ansible-playbook"
SITE = lab.REPO / "ansible_collections/flannel_wizard/node/playbooks/site.yml"
SSHD = "/usr/sbin/sshd"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and sshd"),
    pytest.mark.skipif(not PLAYBOOK.exists(), reason="ansible-core is not installed (the test extra)"),
    pytest.mark.skipif(not Path(SSHD).exists(), reason="Debian's openssh-server is not installed"),
    pytest.mark.timeout(300),
]


@dataclass
class Fleet:
    mesh: MeshLab
    tmp: Path
    inventory: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def nodes(self) -> list[MeshNode]:
        return self.mesh.nodes

    def playbook(self, *args: str, playbook: Path = SITE, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """ansible-playbook (site.yml) in the underlay namespace (where the nodes' addresses are)."""
        assert self.mesh.underlay is not None
        argv = self.mesh.underlay.prefix() + [str(PLAYBOOK), "-i", str(self.inventory), str(playbook), *args]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env,
                              stdin=subprocess.DEVNULL, cwd=self.tmp)
        self.timings[f"{len(self.timings) + 1}: {' '.join(args) or 'run'}"] = time.monotonic() - started
        return done

    def snapshot(self, node: MeshNode) -> dict[str, bytes]:
        """Every file under the node's --root but the wizard's journal and flanneld's /run."""
        return {str(p.relative_to(node.root)): p.read_bytes() for p in sorted(node.root.rglob("*"))
                if p.is_file() and not str(p.relative_to(node.root)).startswith(("var/lib/flannel-wizard", "run/"))}

    def links(self, node: MeshNode) -> list[tuple[str, int, list[str]]]:
        data = json.loads(node.ns.ip("-j", "addr", "show"))
        return sorted((d["ifname"], d["mtu"], sorted(f"{a['local']}/{a['prefixlen']}" for a in d["addr_info"]
                                                      if a["family"] == "inet"))
                      for d in data)

    def etcd_keys(self) -> dict[str, str]:
        assert self.mesh.etcd is not None
        lines = self.mesh.etcd.ctl("get", "--prefix", self.mesh.prefix).stdout.splitlines()
        return {lines[i]: lines[i + 1] for i in range(0, len(lines) - 1, 2)}

    def state(self) -> object:
        return ([self.snapshot(n) for n in self.nodes], [self.links(n) for n in self.nodes], self.etcd_keys())


def recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counters per host."""
    tail = out.rsplit("PLAY RECAP", 1)[-1]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(node\d)\s+:\s+(.*)$", tail, re.M)}


def _keys(tmp: Path) -> tuple[Path, Path]:
    key = tmp / "id_ed25519"
    lab.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f", str(key))
    (tmp / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    return key, tmp / "authorized_keys"


def _sshd(node: MeshNode, tmp: Path, authorized: Path, known: list[str]) -> None:
    """Debian's sshd in the node's namespace on its address:22; returns once it listens (it writes its pid
    file after binding its sockets). Stopped with the namespace (Netns.delete kills what runs in it)."""
    home = tmp / node.name
    home.mkdir(exist_ok=True)
    host_key = home / "ssh_host_ed25519_key"
    lab.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
    known.append(f"{node.address} {host_key.with_suffix('.pub').read_text().split(' ', 2)[0]} "
                 f"{host_key.with_suffix('.pub').read_text().split(' ', 2)[1]}")
    pidfile = home / "sshd.pid"
    config = home / "sshd_config"
    config.write_text(
        f"ListenAddress {node.address}:22\n"
        f"HostKey {host_key}\n"
        f"PidFile {pidfile}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPrintMotd no\nLogLevel ERROR\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n")
    with open(home / "sshd.log", "ab") as log:
        proc = subprocess.Popen(node.ns.prefix() + [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sshd in {node.name} exited: {(home / 'sshd.log').read_text()[-1000:]}")
        return pidfile.exists()

    lab.wait_for(listening, 20, f"sshd in {node.name}")


def _wheelhouse(tmp: Path) -> Path:
    """The flannel-wizard wheel and its dependencies' wheels, as an operator builds them on the controller."""
    house = tmp / "wheelhouse"
    source = tmp / "src"  # a copy: setuptools leaves build/ in the tree it builds
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lab.REPO / name, source / name)
    for name in ("wizard", "screens"):
        shutil.copytree(lab.REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", str(source),
                           "-w", str(house)], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    archive = tmp / "wheelhouse.tar.gz"
    lab.run("tar", "-czf", str(archive), "-C", str(house), ".")
    return archive


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_lab(tmp_path_factory.mktemp("fleet")) as made:
        yield made


@contextlib.contextmanager
def fleet_lab(tmp: Path) -> Iterator[Fleet]:
    """Three seeded nodes reachable over SSH from the underlay namespace, with an inventory for site.yml;
    everything removed on exit (tmp is the caller's)."""
    made_run_sshd = not Path("/run/sshd").exists()
    if made_run_sshd:
        Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege separation directory (Debian's unit makes it)
    mesh = MeshLab()
    try:
        house = _wheelhouse(tmp)
        standins = lab.standin_bin(tmp / "standin-bin")
        mesh.build_underlay()
        key, authorized = _keys(tmp)
        known: list[str] = []
        hosts = {}
        for i in (1, 2, 3):
            node = mesh.add_bare_node(f"node{i}", str(UNDERLAY.network_address + 10 + i))
            seed_root(node.root)
            node.ns.ip("link", "add", "docker0", "type", "bridge")
            node.ns.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
            node.ns.ip("link", "set", "docker0", "up")
            _sshd(node, tmp, authorized, known)
            home = tmp / node.name
            hosts[node.name] = {
                "ansible_host": node.address,
                "flannel_wizard_root": str(node.root),
                "flannel_wizard_venv": str(home / "venv"),
                "flannel_wizard_wheel_dir": str(home / "wheels"),
                "flannel_wizard_environment": {
                    "PATH": f"{standins}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "FW_TEST_ROOT": str(node.root),
                    "FW_STANDIN_LOG": str(home / "standin.log"),
                    "FW_FLANNELD_DAEMON": str(home / "flanneld"),
                    "FW_FLANNELD_TIMEOUT": "5",
                },
            }
        (tmp / "known_hosts").write_text("\n".join(known) + "\n")
        answers = {
            "version": 1,
            "etcd": {"endpoints": [mesh.endpoint], "prefix": mesh.prefix, "api": "v3"},
            "network": {"cidr": mesh.network, "subnet_len": mesh.subnet_len, "backend": {"type": "vxlan", "vni": 1}},
            "flanneld": {"iface": "eth0"},
            "smoke_test": {"enabled": False},
        }
        inventory = tmp / "inventory.yml"
        inventory.write_text(json.dumps({"flannel_nodes": {"hosts": hosts, "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            # only these addresses, and only with the host keys made above
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={tmp / 'known_hosts'} -o StrictHostKeyChecking=yes",
            "ansible_python_interpreter": "/usr/bin/python3",
            "flannel_wizard_wheelhouse": str(house),
            "flannel_wizard_answers": answers,
            "flannel_wizard_ignore_preflight_errors": IGNORE.split(","),
        }}}, indent=1))
        env = {
            "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "HOME": str(tmp), "TMPDIR": str(tmp),
            "ANSIBLE_HOME": str(tmp / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / "cp"),
            "ANSIBLE_COLLECTIONS_PATH": str(lab.REPO),
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_FORKS": "5",
        }
        yield Fleet(mesh, tmp, inventory, env)
    finally:
        mesh.close()  # deleting a namespace kills what runs in it: sshd, its sessions, each node's flanneld
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_check_mode_changes_nothing_and_shows_each_file_diff(fleet: Fleet) -> None:
    """From three fresh nodes: --check --diff plans every node and touches no file, etcd key or link."""
    before = fleet.state()
    done = fleet.playbook("--check", "--diff")
    out = done.stdout
    assert done.returncode == 0, out[-6000:] + done.stderr[-2000:]
    assert fleet.state() == before
    # the engine's diffs in Ansible's before/after form, one per file, headed by the change
    assert out.count("before: update /etc/docker/daemon.json") == 3  # one per node
    assert "after: update /etc/sysconfig/flanneld" in out
    assert '+FLANNEL_ETCD_ENDPOINTS="http://192.168.64.1:2379"' in out
    assert '-FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:4001"' in out
    assert '"native.cgroupdriver=cgroupfs"' in out
    # the etcd config, written once: a change that is not a file, shown as the engine prints it
    assert out.count("create /kube-centos/network/config") >= 1
    summary = out.rsplit("PLAY [Summary]", 1)[-1]
    for node in fleet.nodes:
        assert f"ok: [{node.name}]" in summary
        assert "update /etc/sysconfig/flanneld" in summary


def test_a_node_that_cannot_reach_etcd_fails_is_rolled_back_and_stops_the_rollout(fleet: Fleet) -> None:
    """From the fresh nodes: node2 (the second batch) cannot reach etcd. node1 is rolled out, node2's task
    fails with the step's reason and fix after its step was rolled back, node3 is never touched."""
    rule = ["OUTPUT", "-d", fleet.mesh.endpoint.split("//")[1].split(":")[0], "-p", "tcp", "--dport", "2379",
            "-j", "REJECT", "--reject-with", "tcp-reset"]
    node1, node2, node3 = fleet.nodes
    seeded = fleet.snapshot(node3)
    node2.ns.exec("iptables", "-w", "5", "-A", *rule)
    try:
        done = fleet.playbook()
    finally:
        node2.ns.exec("iptables", "-w", "5", "-D", *rule)
    out = done.stdout
    assert done.returncode == 2, out[-6000:]
    counts = recap(out)
    assert counts["node1"]["failed"] == 0 and counts["node1"]["changed"] > 0
    assert counts["node2"]["failed"] == 1
    failed = json.loads(out.split("fatal: [node2]: FAILED! => ", 1)[1].split("\n", 1)[0])
    # the step's reason and fix, after the engine rolled the step back; the engine's result as the CLI prints it
    assert failed["msg"].startswith("flanneld: systemctl restart flanneld failed"), failed["msg"]
    assert "timeout" in failed["msg"]
    assert failed["fix"].endswith("this step's 1 change(s) were rolled back"), failed["fix"]
    assert failed["changed"] is False and failed["rc"] == 1
    assert failed["result"]["version"] == EVENTS_VERSION and failed["result"]["code"] == 1
    # the module's result is the CLI's closing `result` object: the schema `flannel-wizard schema --events` prints
    jsonschema.validate(failed["result"], events_schema()["result"])
    assert [(c["step"], c["state"]) for c in failed["changes"]] == [("flanneld", "rolled-back"), ("flanneld", "failed")]
    assert "NO MORE HOSTS LEFT" in out
    # node1 is done, node2 is as it was, node3 was not reached by the batches at all
    assert (node1.root / "run/flannel/subnet.env").exists()
    assert (node2.root / "etc/sysconfig/flanneld").read_text() == SEED_ENV
    assert (node2.root / "etc/docker/daemon.json").read_text() == SEED_DAEMON_JSON
    assert fleet.snapshot(node3) == seeded
    assert not (fleet.tmp / "node3/standin.log").exists()
    assert [k for k in fleet.etcd_keys() if "/subnets/" in k] == [f"{fleet.mesh.prefix}/subnets/"
                                                                  f"{node1.subnet_env()['FLANNEL_SUBNET'].replace('.1/24', '.0-24')}"]


def test_a_run_converges_every_node_and_a_second_changes_nothing(fleet: Fleet) -> None:
    """From node1 rolled out and node2, node3 as seeded: the run converges node2 and node3 (node1 has nothing
    left to do), every batch's mesh check passes; the same run again reports changed=0 on every host."""
    done = fleet.playbook()
    out = done.stdout
    assert done.returncode == 0, out[-8000:]
    counts = recap(out)
    assert counts["node2"]["changed"] > 0 and counts["node3"]["changed"] > 0
    assert all(c["failed"] == 0 for c in counts.values())
    leases = {k: json.loads(v) for k, v in fleet.etcd_keys().items() if "/subnets/" in k}
    assert sorted(v["PublicIP"] for v in leases.values()) == [n.address for n in fleet.nodes]
    for node in fleet.nodes:
        env = node.subnet_env()
        daemon = json.loads((node.root / "etc/docker/daemon.json").read_text())
        assert daemon["bip"] == env["FLANNEL_SUBNET"] and daemon["mtu"] == 1450
        assert ("docker0", 1450, [env["FLANNEL_SUBNET"]]) in fleet.links(node)
    # the mesh check ran at the end of every batch, each proving the overlay to the nodes before it
    assert out.count("TASK [flannel_wizard.node.flannel_wizard : Run flannel-wizard (check)]") == 3
    again = fleet.playbook()
    assert again.returncode == 0, again.stdout[-6000:]
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"node1": 0, "node2": 0, "node3": 0}


def test_a_broken_mesh_stops_the_rollout_at_the_first_batch(fleet: Fleet) -> None:
    """From the converged fleet: node2 drops vxlan's UDP port. node1's batch changes nothing, then its mesh
    check names node2 and fails, so the rollout stops there: node2 and node3 are not reached."""
    node1, node2, _node3 = fleet.nodes
    fleet.mesh.drop_udp(node2)
    try:
        done = fleet.playbook()
    finally:
        fleet.mesh.heal()
    out = done.stdout
    assert done.returncode == 2, out[-6000:]
    counts = recap(out)
    assert counts["node1"]["failed"] == 1 and counts["node1"]["changed"] == 0
    assert counts["node2"]["failed"] == 0 and counts["node3"]["failed"] == 0
    failed = json.loads(out.split("fatal: [node1]: FAILED! => ", 1)[1].split("\n", 1)[0])
    assert failed["result"]["mode"] == "check" and failed["steps"] == {"mesh": "failed"}
    assert node2.address in failed["fix"], failed["fix"]
    broken = [c for c in failed["checks"] if c["status"] == "failed" and c["subject"] == node2.address]
    assert broken and {c["hop"] for c in broken} == {"port"}, failed["checks"]
    assert "NO MORE HOSTS LEFT" in out
    # node2's and node3's batches never ran: the apply task ran once, on node1
    assert out.count("TASK [flannel_wizard.node.flannel_wizard : Run flannel-wizard (apply)]") == 2  # etcd once, node1


UNDO = """\
- name: Undo what flannel-wizard did on every node
  hosts: flannel_nodes
  gather_facts: false
  roles:
    - role: flannel_wizard.node.flannel_wizard
      flannel_wizard_mode: undo
      flannel_wizard_install: false
"""


def test_undo_mode_restores_every_node(fleet: Fleet) -> None:
    """From the converged fleet: the role in undo mode puts every file back byte for byte, docker0 back on
    docker's network and deletes the etcd config node1 created; a second undo has nothing left to do."""
    playbook = fleet.tmp / "undo.yml"
    playbook.write_text(UNDO)
    done = fleet.playbook(playbook=playbook)
    assert done.returncode == 0, done.stdout[-6000:]
    assert {h: c["changed"] > 0 for h, c in recap(done.stdout).items()} == {"node1": True, "node2": True, "node3": True}
    for node in fleet.nodes:
        assert (node.root / "etc/sysconfig/flanneld").read_text() == SEED_ENV
        assert (node.root / "etc/docker/daemon.json").read_text() == SEED_DAEMON_JSON
        assert ("docker0", 1500, ["172.17.0.1/16"]) in fleet.links(node)
    assert f"{fleet.mesh.prefix}/config" not in fleet.etcd_keys()
    again = fleet.playbook(playbook=playbook)
    assert again.returncode == 0, again.stdout[-6000:]
    assert {h: c["changed"] for h, c in recap(again.stdout).items()} == {"node1": 0, "node2": 0, "node3": 0}


CHECK = """\
- name: The doctor on one node, from an answers file on it
  hosts: node1
  gather_facts: false
  tasks:
    - name: Check flanneld and docker against the answers
      flannel_wizard.node.flannel_wizard:
        mode: check
        answers_file: "{{ answers_path }}"
        only: [flanneld, docker]
        root: "{{ flannel_wizard_root }}"
        executable: "{{ flannel_wizard_venv }}/bin/flannel-wizard"
      environment: "{{ flannel_wizard_environment }}"
"""


def test_check_mode_of_the_module_reports_drift_from_an_answers_file(fleet: Fleet) -> None:
    """From the undone fleet: `mode: check` with an answers file on node1 fails, naming each setting that is not
    as the answers say with the apply that fixes it, and changes nothing."""
    answers = fleet.tmp / "node1" / "answers.json"  # JSON is YAML: the answers the inventory gives, as a file
    inventory = json.loads(fleet.inventory.read_text())
    answers.write_text(json.dumps(inventory["flannel_nodes"]["vars"]["flannel_wizard_answers"]))
    playbook = fleet.tmp / "check.yml"
    playbook.write_text(CHECK)
    before = fleet.state()
    done = fleet.playbook("-e", f"answers_path={answers}", playbook=playbook)
    assert done.returncode == 2, done.stdout[-6000:]
    failed = json.loads(done.stdout.split("fatal: [node1]: FAILED! => ", 1)[1].split("\n", 1)[0])
    assert failed["msg"].startswith("check: ") and failed["msg"].endswith("nothing was changed"), failed["msg"]
    assert failed["steps"] == {"flanneld": "failed", "docker": "failed"}
    assert "flanneld: not as the answers say: it would update /etc/sysconfig/flanneld" in failed["fix"], failed["fix"]
    assert failed["changed"] is False and failed["result"]["mode"] == "check"
    assert fleet.state() == before
