"""Which channel gives dockerd bip, mtu and ip-masq, read from the packages' real docker units (issue 11).

The units are the fixtures' (tests/unitfixtures.py) under a temporary root; the facts are what the
docker step's inspect reads from such a node, and `plan` is the step's own. The real dockerd's verdict
on the same files is in tests/test_dockerd_real.py.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from tests import unitfixtures
from wizard import dockerunit, units
from wizard.answers import Answers, parse
from wizard.changes import FileWrite
from wizard.node import Node
from wizard.node.files import Files
from wizard.node.linkinfo import LinkInfo, Route
from wizard.steps import Plan, docker

ENV = {"FLANNEL_NETWORK": "172.30.0.0/16", "FLANNEL_SUBNET": "172.30.46.1/24", "FLANNEL_MTU": "1450",
       "FLANNEL_IPMASQ": "false"}
DOCKER0 = LinkInfo("docker0", 3, 1500, "bridge", ("172.17.0.1/16",))
DAEMON = "/etc/docker/daemon.json"


def answers(text: str = "") -> Answers:
    return parse("version: 1\n" + text)


def facts(root: Path, a: Answers, env: dict[str, str] | None = ENV, **kw: object) -> docker.Facts:
    """What inspect reads from a node with this root: the unit, and every file the plan may use."""
    files = Files(str(root))
    unit = units.load(files, a.docker.service)
    paths = [*dockerunit.FLANNEL_OPTS_FILES, DAEMON, "/etc/docker/custom.json"]
    paths += [p for p in (a.docker.opts_file, a.docker.daemon_json) if p and p != "auto"]
    paths += [p for p, _ in unit.environment_files] if unit else []
    base: dict[str, object] = dict(
        subnet_env=dict(env) if env else None, files={p: files.state(p) for p in dict.fromkeys(paths)},
        bridge=DOCKER0, routes=[], iface_mtu=1500, lease="known" if env else "pending",
        config=a.network.flannel_config(secrets=False), unit=unit,
        flanneld_writes=docker.flanneld_writes(Node(str(root)), a.flanneld.service))
    base.update(kw)
    return docker.Facts(**base)  # type: ignore[arg-type]


def node(tmp_path: Path, *sets: str, daemon: dict | None = None, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "root"
    unitfixtures.install(root, *sets)
    for path, text in {**({DAEMON: json.dumps(daemon)} if daemon is not None else {}), **(files or {})}.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    return root


def writes(plan: Plan) -> dict[str, FileWrite]:
    return {c.path: c for c in plan.changes if isinstance(c, FileWrite)}


def failures(plan: Plan) -> list[str]:
    return [f"{n.message} | {n.detail}" for n in plan.notes if n.status == "failed"]


CENTOS = ("centos7-flannel", "centos7-docker")


# ---------------------------------------------------------------- the article's CentOS 7 node


def test_centos_flags_come_from_the_flannel_drop_in_and_daemon_json_loses_bip_and_mtu(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={"debug": True, "bip": "10.1.0.1/24", "mtu": 1400})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == []
    assert plan.output == docker.Output("/run/flannel/docker", "DOCKER_NETWORK_OPTIONS", DAEMON)
    files = writes(plan)
    assert files["/run/flannel/docker"].new == (
        b'DOCKER_OPT_BIP="--bip=172.30.46.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        b'DOCKER_NETWORK_OPTIONS=" --bip=172.30.46.1/24 --ip-masq=true --mtu=1450"\n')
    assert files["/run/flannel/docker"].why == (
        "as mk-docker-opts.sh writes it; docker.service passes $DOCKER_NETWORK_OPTIONS to dockerd; flanneld's "
        "ExecStartPost (mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS, in /usr/lib/systemd/system/flanneld.service) "
        "writes it too, at every restart")
    assert json.loads(files[DAEMON].new or b"") == {"debug": True}
    assert files[DAEMON].why == ("bip and mtu taken out: docker.service passes them as flags, and dockerd refuses a "
                                 "setting given both ways")
    assert "/run/docker_opts.env" not in files


def test_centos_flags_leave_a_clean_daemon_json_alone(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={"debug": True})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == [] and DAEMON not in writes(plan)
    # and flannel masquerading (docker must not) travels as a flag too, never into daemon.json
    masq = docker.plan(a, facts(root, a, env={**ENV, "FLANNEL_IPMASQ": "true"}))
    assert DAEMON not in writes(masq) and b"--ip-masq=false" in (writes(masq)["/run/flannel/docker"].new or b"")


def test_answers_that_miss_the_units_file_and_variable_fail_with_the_answers_to_set(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={})
    a = answers("docker:\n  opts_file: /run/docker_opts.env\n  opts: {combined_key: DOCKER_OPTS}\n")
    plan = docker.plan(a, facts(root, a))
    assert plan.failed and plan.to_make == []
    (failure,) = failures(plan)
    assert failure.startswith("docker.service reads /run/flannel/docker (EnvironmentFile=) and its ExecStart= (in "
                              "/usr/lib/systemd/system/docker.service) expands $DOCKER_NETWORK_OPTIONS: dockerd takes its "
                              "network options from there as flags, and what the wizard would write "
                              "(docker.opts_file: /run/docker_opts.env, docker.opts.combined_key: DOCKER_OPTS) does not "
                              "reach it")
    assert failure.endswith("set docker.opts_file: /run/flannel/docker and docker.opts.combined_key: "
                            "DOCKER_NETWORK_OPTIONS (or auto, which follows the unit)")
    only_key = answers("docker:\n  opts: {combined_key: DOCKER_OPTS, individual: false}\n")
    assert failures(docker.plan(only_key, facts(root, only_key)))[0].endswith(
        "set docker.opts.combined_key: DOCKER_NETWORK_OPTIONS (or auto, which follows the unit)")
    the_units = answers("docker:\n  opts_file: /run/flannel/docker\n  opts: {combined_key: DOCKER_NETWORK_OPTIONS}\n")
    assert failures(docker.plan(the_units, facts(root, the_units))) == []


def test_daemon_json_left_alone_but_holding_a_flag_fails_with_the_fix(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={"bip": "10.1.0.1/24"})
    a = answers("docker:\n  daemon_json: null\n")
    (failure,) = failures(docker.plan(a, facts(root, a)))
    assert failure.startswith("/etc/docker/daemon.json sets bip, which dockerd also gets as flags "
                              "($DOCKER_NETWORK_OPTIONS from /run/flannel/docker): dockerd would refuse to start")
    assert failure.endswith("set docker.daemon_json: /etc/docker/daemon.json so the wizard takes them out, or "
                            "remove them by hand")


def test_another_setting_given_both_ways_is_refused_before_docker_is_restarted(tmp_path: Path) -> None:
    """CentOS's /etc/sysconfig/docker passes --log-driver=journald in $OPTIONS: a daemon.json with
    log-driver keeps dockerd down whatever the wizard does with bip."""
    root = node(tmp_path, *CENTOS, daemon={"log-driver": "journald"})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    (failure,) = failures(plan)
    assert failure.startswith("dockerd would refuse to start: log-driver comes both as a flag ($OPTIONS from "
                              "/etc/sysconfig/docker) and from /etc/docker/daemon.json")
    assert plan.to_make == []


def test_the_cgroup_driver_flag_is_left_to_the_cgroup_step(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={"exec-opts": ["native.cgroupdriver=systemd"]})
    a = answers()
    assert failures(docker.plan(a, facts(root, a))) == []


def test_centos_before_the_lease_lists_the_same_changes(tmp_path: Path) -> None:
    """Pending: the opts file waits for the lease; taking bip out of daemon.json does not."""
    root = node(tmp_path, *CENTOS, daemon={"debug": True, "bip": "10.1.0.1/24"})
    a = answers()
    pending = docker.plan(a, facts(root, a, env=None))
    assert failures(pending) == []
    kinds = [(type(c).__name__, getattr(c, "path", ""), bool(getattr(c, "pending_on", ""))) for c in pending.to_make]
    assert kinds == [("FileWrite", "/run/flannel/docker", True), ("FileWrite", DAEMON, False),
                     ("BridgeAddress", "", True), ("Restart", "", False)]
    known = docker.plan(a, facts(root, a))
    assert [(type(c).__name__, getattr(c, "path", "")) for c in known.to_make] == [k[:2] for k in kinds]


# ---------------------------------------------------------------- Debian's docker.io, and no unit


def test_debian_takes_bip_and_mtu_from_daemon_json(tmp_path: Path) -> None:
    root = node(tmp_path, "debian12-docker", daemon={"log-driver": "journald"})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == []
    assert plan.output == docker.Output("/run/docker_opts.env", "DOCKER_OPTS", DAEMON)
    files = writes(plan)
    assert json.loads(files[DAEMON].new or b"") == {"log-driver": "journald", "bip": "172.30.46.1/24", "mtu": 1450}
    assert files[DAEMON].why == "bip and mtu: docker.service passes neither --bip nor --mtu"
    assert files["/run/docker_opts.env"].why == "as mk-docker-opts.sh writes it; docker.service does not pass it to dockerd"
    masq = docker.plan(a, facts(root, a, env={**ENV, "FLANNEL_IPMASQ": "true"}))  # flannel masquerades: docker must not
    assert json.loads(writes(masq)[DAEMON].new or b"")["ip-masq"] is False


def test_debian_with_mtu_in_docker_opts_gets_only_bip_in_daemon_json(tmp_path: Path) -> None:
    root = node(tmp_path, "debian12-docker", daemon={"mtu": 1450},
                files={"/etc/default/docker": 'DOCKER_OPTS="--mtu=1450 --dns 192.0.2.53"\n'})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == []
    assert json.loads(writes(plan)[DAEMON].new or b"") == {"bip": "172.30.46.1/24"}  # mtu out: it is a flag
    assert "dockerd gets --mtu from $DOCKER_OPTS from /etc/default/docker" in [n.message for n in plan.notes]
    other = node(tmp_path / "b", "debian12-docker", daemon={},
                 files={"/etc/default/docker": 'DOCKER_OPTS="--mtu=1400"\n'})
    (failure,) = failures(docker.plan(a, facts(other, a)))
    assert failure == ("$DOCKER_OPTS from /etc/default/docker gives dockerd --mtu=1400, not flannel's 1450 | change it "
                       "there to --mtu=1450, or remove it so the wizard gives dockerd mtu itself")


def test_without_a_unit_daemon_json_is_the_channel_and_the_plan_says_why(tmp_path: Path) -> None:
    root = node(tmp_path, daemon={})
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == [] and plan.output == docker.Output("/run/docker_opts.env", "DOCKER_OPTS", DAEMON)
    assert writes(plan)[DAEMON].why == "bip and mtu: no docker unit found, and dockerd reads this file by default"
    off = answers("docker:\n  daemon_json: null\n")
    assert [n.message for n in docker.plan(off, facts(root, off)).notes] == [
        "no docker unit found and docker.daemon_json is null: dockerd gets --bip and --mtu only if its start command "
        "passes $DOCKER_OPTS from /run/docker_opts.env"]


def test_a_config_file_named_by_the_unit_is_the_daemon_json(tmp_path: Path) -> None:
    dropin = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd --config-file=/etc/docker/custom.json $DOCKER_OPTS\n"
    root = node(tmp_path, "debian12-docker", files={"/etc/systemd/system/docker.service.d/10-config.conf": dropin,
                                                   "/etc/docker/custom.json": "{}\n"})
    a = answers()
    (failure,) = failures(docker.plan(a, facts(root, a)))
    assert failure.endswith("| set docker.daemon_json: /etc/docker/custom.json")
    right = answers("docker:\n  daemon_json: /etc/docker/custom.json\n")
    assert list(writes(docker.plan(right, facts(root, right)))) == ["/run/docker_opts.env", "/etc/docker/custom.json"]


# ---------------------------------------------------------------- cni0, and mk-docker-opts.sh's route check


def test_cni0_on_the_lease_is_refused_with_the_reason(tmp_path: Path) -> None:
    root = node(tmp_path, daemon={})
    a = answers()
    cni = LinkInfo("cni0", 7, 1450, "bridge", ("172.30.46.1/24",))
    plan = docker.plan(a, facts(root, a, cni=cni))
    assert plan.failed and plan.to_make == []
    assert plan.notes[0].message.startswith("cni0 already holds 172.30.46.1/24 on this node's lease 172.30.46.0/24")
    elsewhere = LinkInfo("cni0", 7, 1450, "bridge", ("10.244.3.1/24",))
    assert not docker.plan(a, facts(root, a, cni=elsewhere)).failed
    pending = docker.plan(a, facts(root, a, env=None, cni=cni))
    assert not pending.failed and pending.notes[0].status == "warn"


def route(dst: str, gateway: str | None = None, dev: str = "eth0") -> Route:
    return Route(ipaddress.IPv4Network(dst), gateway, dev)


@pytest.mark.parametrize(("routes", "refused"), [
    ([route("172.30.46.0/24", "192.0.2.1")], ["172.30.46.0/24 via 192.0.2.1 dev eth0"]),
    ([route("172.30.0.0/16", "192.0.2.1")], []),  # wider: the grep does not find the lease in it
    ([route("172.30.46.128/25", "192.0.2.1")], []),  # narrower: neither
    ([route("172.30.46.0/24", None, "docker0")], []),  # no via: the connected route
    ([route("172.30.5.0/24", "172.30.5.0", "flannel.1")], []),  # another node's lease, as flannel routes it
])
def test_the_route_check_is_mk_docker_opts_grep(routes: list[Route], refused: list[str]) -> None:
    assert dockerunit.script_subnet("172.30.46.1/24") == "172.30.46.0/24"
    assert dockerunit.refused_routes("172.30.46.1/24", routes) == refused


def test_the_grep_matches_inside_a_longer_address_as_the_script_does() -> None:
    """The grep's own looseness, kept: the match may start inside another address."""
    assert dockerunit.refused_routes("10.1.1.1/24", [route("110.1.1.0/24", "192.0.2.1")]) == [
        "110.1.1.0/24 via 192.0.2.1 dev eth0"]


def test_a_refused_route_says_what_the_script_would_do(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={})
    a = answers()
    plan = docker.plan(a, facts(root, a, routes=[route("172.30.46.0/24", "192.0.2.1")]))
    (note,) = [n for n in plan.notes if n.status == "failed"]
    assert note.message == "Your routing table already contains the subnet: 172.30.46.0/24 via 192.0.2.1 dev eth0"
    assert note.detail.startswith("that is mk-docker-opts.sh's refusal (`ip route show | grep 172.30.46.0/24 | grep "
                                  "via` matched): it writes /run/flannel/docker and then exits 1")
    assert plan.to_make == []
    narrower = docker.plan(a, facts(root, a, routes=[route("172.30.46.128/25", "192.0.2.1")]))
    assert not narrower.failed and [n.status for n in narrower.notes] == ["warn"]


# ---------------------------------------------------------------- flanneld's ExecStartPost= (mk-docker-opts.sh)

SCRIPT = "/usr/libexec/flannel/mk-docker-opts.sh"
PACKAGED = f"{SCRIPT} -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker"


def execstartpost(line: str) -> dict[str, str]:
    """A drop-in that replaces the flannel package's ExecStartPost= with `line`."""
    return {"/etc/systemd/system/flanneld.service.d/10-post.conf": f"[Service]\nExecStartPost=\nExecStartPost={line}\n"}


# What flannel's dist/mk-docker-opts.sh writes for ENV with each line's flags (neither -i nor -c: both;
# -m: no --ip-masq; an inherited $KEY leads the combined value, then the script's own leading space),
# as facts.md gives its format; the script is upstream's code and is not kept here.
BOTH = (b'DOCKER_OPT_BIP="--bip=172.30.46.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        b'DOCKER_NETWORK_OPTIONS=" --bip=172.30.46.1/24 --ip-masq=true --mtu=1450"\n')
COMBINED_NO_MASQ = b'DOCKER_NETWORK_OPTIONS=" --bip=172.30.46.1/24 --mtu=1450"\n'
INHERITED = (b'DOCKER_OPT_BIP="--bip=172.30.46.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1450"\n'
             b'DOCKER_NETWORK_OPTIONS="--iptables=true  --bip=172.30.46.1/24 --ip-masq=true --mtu=1450"\n')


@pytest.mark.parametrize("line", [PACKAGED, f"{SCRIPT} -c -m -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker",
                                  f"-{SCRIPT} -cmkDOCKER_NETWORK_OPTIONS -d /run/flannel/docker"])
def test_auto_answers_write_what_flanneld_s_execstartpost_writes(tmp_path: Path, line: str) -> None:
    """The article's node: the wizard's write of /run/flannel/docker is byte for byte what flannel's
    script writes there at flanneld's next restart, -c/-m included."""
    root = node(tmp_path, *CENTOS, daemon={}, files={} if line == PACKAGED else execstartpost(line))
    a = answers()
    plan = docker.plan(a, facts(root, a))
    assert failures(plan) == []
    written = writes(plan)["/run/flannel/docker"]
    assert written.new == (BOTH if line == PACKAGED else COMBINED_NO_MASQ)
    assert DAEMON not in writes(plan)  # -m: no --ip-masq flag, and none put into daemon.json instead
    flags = "-k DOCKER_NETWORK_OPTIONS" + ("" if line == PACKAGED else " -c -m")
    assert written.why.endswith(f"flanneld's ExecStartPost (mk-docker-opts.sh {flags}, in "
                                f"{'/usr/lib/systemd/system/flanneld.service' if line == PACKAGED else '/etc/systemd/system/flanneld.service.d/10-post.conf'}) "
                                "writes it too, at every restart")


def test_a_value_in_flanneld_s_environment_is_put_first_as_the_script_does(tmp_path: Path) -> None:
    """flanneld.service reads /etc/sysconfig/docker-network: a $DOCKER_NETWORK_OPTIONS there leads the line."""
    root = node(tmp_path, *CENTOS, daemon={},
                files={"/etc/sysconfig/docker-network": 'DOCKER_NETWORK_OPTIONS="--iptables=true"\n'})
    a = answers()
    written = writes(docker.plan(a, facts(root, a)))["/run/flannel/docker"].new or b""
    assert b'DOCKER_NETWORK_OPTIONS="--iptables=true  --bip=' in written
    assert written == INHERITED


def test_answers_that_flanneld_s_execstartpost_would_undo_fail_with_the_answers_to_set(tmp_path: Path) -> None:
    root = node(tmp_path, *CENTOS, daemon={})
    a = answers("docker:\n  opts: {ip_masq: false}\n")
    plan = docker.plan(a, facts(root, a))
    assert plan.to_make == []
    assert failures(plan) == [
        "flanneld's ExecStartPost rewrites /run/flannel/docker at every restart with $DOCKER_NETWORK_OPTIONS and the "
        f"DOCKER_OPT_* lines, with --ip-masq (`{PACKAGED}` in /usr/lib/systemd/system/flanneld.service), so what the "
        "answers would write there lasts only until flanneld restarts | set docker.opts.ip_masq: true (the defaults "
        "follow flanneld's unit)"]
    # no docker unit: the same variable in another file, and another variable in flanneld's file
    bare = node(tmp_path / "bare", "centos7-flannel")
    other_file = answers("docker:\n  opts_file: /run/docker_opts.env\n  opts: {combined_key: DOCKER_NETWORK_OPTIONS}\n")
    (failure,) = failures(docker.plan(other_file, facts(bare, other_file)))
    assert failure.startswith("flanneld's ExecStartPost rewrites /run/flannel/docker at every restart with "
                              "$DOCKER_NETWORK_OPTIONS")
    assert failure.endswith("docker.opts_file: /run/docker_opts.env would hold another $DOCKER_NETWORK_OPTIONS: two "
                            "files give dockerd's options, and only flanneld's is kept up to date | set "
                            "docker.opts_file: /run/flannel/docker (or auto, which follows flanneld's unit)")
    other_key = answers("docker:\n  opts_file: /run/flannel/docker\n  opts: {combined_key: DOCKER_OPTS, combined: false}\n")
    (failure,) = failures(docker.plan(other_key, facts(bare, other_key)))
    assert failure.endswith("| set docker.opts.combined_key: DOCKER_NETWORK_OPTIONS and docker.opts.combined: true "
                            "(the defaults follow flanneld's unit)")
    auto = answers()
    plan = docker.plan(auto, facts(bare, auto))
    assert failures(plan) == []
    assert plan.output == docker.Output("/run/flannel/docker", "DOCKER_NETWORK_OPTIONS", DAEMON)


def test_docker_and_flanneld_disagreeing_on_the_variable_is_said_once_with_the_units_to_change(tmp_path: Path) -> None:
    """Debian's docker.service with the flannel package's drop-in expands $DOCKER_OPTS from /run/flannel/docker,
    where flanneld writes $DOCKER_NETWORK_OPTIONS: no answer helps, the units must agree."""
    root = node(tmp_path, "centos7-flannel", "debian12-docker", daemon={})
    a = answers()
    (failure,) = failures(docker.plan(a, facts(root, a)))
    assert "flanneld's ExecStartPost rewrites /run/flannel/docker at every restart with $DOCKER_NETWORK_OPTIONS" in failure
    assert failure.endswith("| make them agree: -k DOCKER_OPTS in flanneld's ExecStartPost=, or $DOCKER_NETWORK_OPTIONS "
                            "in docker.service's ExecStart= (a drop-in), then run the wizard again")
