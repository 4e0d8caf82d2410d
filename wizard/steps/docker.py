"""docker: docker0 moved onto flannel's subnet — opts file as mk-docker-opts.sh writes it, daemon.json,
the bridge's address and MTU, and a restart.

bip, mtu and ip-masq each reach dockerd through exactly one channel, the one its unit really gives it
(wizard/dockerunit.py): flags from the opts file where docker.service expands its variable (the
article's CentOS node), else daemon.json; dockerd refuses a setting that comes both ways."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from wizard import dockerunit, flannel, units
from wizard.changes import BridgeAddress, FileWrite, Restart
from wizard.errors import WizardError
from wizard.node.files import FileState
from wizard.steps import Note, Plan, Step
from wizard.steps.flanneld import read_subnet_env

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import NodeLike
    from wizard.node.linkinfo import LinkInfo, Route
    from wizard.steps import Check, Context
    from wizard.units import Unit

LEASE = "flanneld's lease"
Lease = Literal["known", "pending", "restart-skipped", "missing"]
CNI_BRIDGE = "cni0"  # the bridge flannel's CNI plugin (the bridge plugin under it) makes for its pods


@dataclass
class Facts:
    subnet_env: dict[str, str] | None
    # every file the plan may read or write: the opts file candidates, the environment files docker's
    # unit reads, and the daemon.json files dockerd may read
    files: dict[str, FileState]
    bridge: LinkInfo | None
    routes: list[Route]
    iface_mtu: int = 1500
    # known: subnet.env is there · pending: flanneld is (re)started earlier in this run and will write it ·
    # restart-skipped: flanneld could not be restarted (no systemd) · missing: nothing will write it
    lease: Lease = "known"
    config: dict[str, Any] = field(default_factory=dict)  # the flannel config in force
    unit: Unit | None = None  # docker's service unit as systemd loads it; None: no unit found
    cni: LinkInfo | None = None  # cni0, when flannel's CNI plugin made it
    # mk-docker-opts.sh in flanneld's ExecStartPost=: files flanneld itself rewrites at every start
    flanneld_writes: list[dockerunit.MkDockerOpts] = field(default_factory=list)


@dataclass(frozen=True)
class Output:
    """Which files the plan writes, as the unit decided them (for the page's preview)."""

    opts_file: str
    combined_key: str
    daemon_json: str


def inspect(ctx: Context) -> Facts:
    from wizard.steps.etcd import in_force
    from wizard.steps.flanneld import Output as FlanneldOutput
    from wizard.steps.network import iface_mtu

    a = ctx.answers
    env = read_subnet_env(ctx)
    links = ctx.node.links
    lease: Lease = "known"
    if env is None:
        flanneld = ctx.output("flanneld", FlanneldOutput)
        if a.flanneld.service in ctx.skipped_restarts:
            lease = "restart-skipped"
        elif flanneld is not None and flanneld.restart_planned:
            lease = "pending"
        else:
            lease = "missing"
    unit = units.read(ctx.node, a.docker.service)
    paths = [*dockerunit.FLANNEL_OPTS_FILES, dockerunit.DEFAULT_CONFIG]
    paths += [p for p in (a.docker.opts_file, a.docker.daemon_json) if p and p != "auto"]
    paths += [p for p, _optional in unit.environment_files] if unit else []
    files = {p: ctx.file_state(p) for p in dict.fromkeys(paths)}
    if unit is not None:  # the daemon.json dockerd reads may be named by a flag from one of those files
        words, _origin, _missing = dockerunit.expand(unit, {p: s.data for p, s in files.items()})
        for word in words.get("config-file", []):
            if word.text.startswith("/") and word.text not in files:
                files[word.text] = ctx.file_state(word.text)
    return Facts(env, files, links.link(a.docker.bridge), links.routes(), iface_mtu(links, a.flanneld.iface)[1],
                 lease, in_force(ctx), unit, links.link(CNI_BRIDGE), flanneld_writes(ctx.node, a.flanneld.service))


def flanneld_writes(node: NodeLike, service: str) -> list[dockerunit.MkDockerOpts]:
    """The mk-docker-opts.sh runs in flanneld's ExecStartPost=, expanded with flanneld's environment."""
    unit = units.read(node, service)
    if unit is None:
        return []
    try:
        env = units.environment(node.files, unit)
    except units.MissingEnvironmentFile:
        env = dict(unit.environment)  # flanneld would not start; the flanneld step says so
    return dockerunit.flanneld_writes(unit, env)


def _edit_daemon_json(state: FileState, put: dict[str, Any], drop: list[str], path: str) -> bytes | None:
    """daemon.json with `put` merged in and `drop` taken out, every other key kept; None when it
    already says so."""
    from wizard.node.files import decode_text

    text = decode_text(state.data or b"", path)  # edited and written back: a bad byte is named, not replaced
    try:
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise WizardError(f"{path} is not valid JSON: {exc}", "fix the file by hand (dockerd would not start either)") from None
    if not isinstance(data, dict):
        raise WizardError(f"{path} is not a JSON object", "fix the file by hand")
    edited = {k: v for k, v in data.items() if k not in drop}
    edited.update(put)
    if edited == data:
        return None
    return (json.dumps(edited, indent=2) + "\n").encode()


def _parse_bool(text: str) -> bool | None:
    """A boolean flag's value as Go's strconv.ParseBool reads it."""
    return {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}.get(text.lower())


def _same(setting: str, value: str, wanted: Any) -> bool:
    if setting == "mtu":
        return value.isdigit() and int(value) == wanted
    if setting == "ip-masq":
        return _parse_bool(value) == wanted
    return value == wanted


def _listed(names: list[str], flags: bool = False) -> str:
    shown = [f"--{n}" if flags else n for n in names]
    return " and ".join(shown) if len(shown) < 3 else ", ".join(shown[:-1]) + " and " + shown[-1]


@dataclass
class _Files:
    """The channels decided, and daemon.json as the plan writes it (with the reason its change gives)."""

    channels: dockerunit.Channels
    daemon_json: bytes | None = None  # None: daemon.json is left as it is
    daemon_why: str = ""
    needs_lease: bool = False  # daemon.json gets values that only the lease gives


def _channels(a: Answers, facts: Facts, env: dict[str, str], result: Plan, pending: bool) -> _Files | None:
    """Decide through which channel dockerd gets bip, mtu and ip-masq (flags from the opts file its unit
    reads, or daemon.json), and how daemon.json must change; None after a failed note."""
    data = {p: s.data for p, s in facts.files.items()}
    try:
        ch = dockerunit.resolve(a.docker, facts.unit, data, lambda f: flannel.mk_docker_opts(
            env, f.individual, f.combined, f.key, f.ip_masq, f.inherited), facts.flanneld_writes)
    except WizardError as exc:
        result.note("failed", exc.what, exc.fix)
        return None
    for what, fix in ch.problems:
        result.note("failed", what, fix)
    masq = env.get("FLANNEL_IPMASQ")
    # what mk-docker-opts.sh gives dockerd: flannel masquerading means docker must not (and -m: say nothing);
    # ch.format: the answers' flags, or flanneld's where its ExecStartPost= writes the same file
    wanted: dict[str, Any] = {"bip": env.get("FLANNEL_SUBNET", ""), "mtu": int(env.get("FLANNEL_MTU", "0") or 0),
                              "ip-masq": None if not ch.format.ip_masq or masq not in ("true", "false")
                              else masq == "false"}
    for setting in dockerunit.SETTINGS:
        for source in ch.others(setting):
            if wanted[setting] is None:
                continue
            if setting == "bip" and pending:
                result.note("failed", f"{source.where()} gives dockerd --bip={source.value}, but flanneld's lease "
                            f"decides {a.docker.bridge}'s subnet", "remove --bip there; the wizard gives dockerd the lease")
            elif not _same(setting, source.value, wanted[setting]):
                value = str(wanted[setting]).lower() if setting == "ip-masq" else wanted[setting]
                result.note("failed", f"{source.where()} gives dockerd --{setting}={source.value}, not flannel's "
                            f"{value}", f"change it there to --{setting}={value}, or remove it so the wizard gives "
                            f"dockerd {setting} itself")
    config = ch.config_file
    unit = facts.unit
    if unit is not None and a.docker.daemon_json and a.docker.daemon_json != config:
        result.note("failed", f"{unit.name} starts dockerd with --config-file {config} ({ch.config_from}), so "
                    f"dockerd never reads docker.daemon_json {a.docker.daemon_json}", f"set docker.daemon_json: {config}")
    if result.failed:
        return None
    as_flags = ch.as_flags
    put: dict[str, Any] = {s: wanted[s] for s in ("bip", "mtu") if s not in as_flags}
    state = facts.files.get(config) or FileState(None)
    current = _current_json(state)
    if "ip-masq" not in as_flags and wanted["ip-masq"] is not None and current.get("ip-masq", True) != wanted["ip-masq"]:
        put["ip-masq"] = wanted["ip-masq"]  # dockerd's default is true: only a change is written
    drop = [s for s in as_flags if s in current]
    out = _Files(ch, needs_lease=bool(put))
    _channel_note(a, facts, ch, put, result)
    if not a.docker.daemon_json:
        if drop:
            result.note("failed", f"{config} sets {_listed(drop)}, which dockerd also gets as flags "
                        f"({'; '.join(ch.flags[d][0].where() for d in drop)}): dockerd would refuse to start "
                        f"(\"the following directives are specified both as a flag and in the configuration file\")",
                        f"set docker.daemon_json: {config} so the wizard takes them out, or remove them by hand")
            return None
        return out if _refused_twice(a, facts, ch, out, current, result) else None
    try:
        out.daemon_json = _edit_daemon_json(state, put, drop, config)
    except WizardError as exc:
        result.note("failed", exc.what, exc.fix)
        return None
    out.daemon_why = _daemon_why(facts, ch, put, drop)
    return out if _refused_twice(a, facts, ch, out, current, result) else None


# exec-opts (the cgroup driver) is the cgroup step's: it moves the driver to the one channel dockerd reads
_NOT_OURS_TO_JUDGE = frozenset({*dockerunit.SETTINGS, "exec-opts"})


def _refused_twice(a: Answers, facts: Facts, ch: dockerunit.Channels, out: _Files, current: dict[str, Any],
                   result: Plan) -> bool:
    """False (after a failed note) when dockerd would still refuse to start after this step: another
    setting given both as a flag and in daemon.json, so restarting docker would leave it down."""
    if facts.unit is None:
        return True
    data = json.loads(out.daemon_json) if out.daemon_json is not None else current
    files = {p: s.data for p, s in facts.files.items()}
    twice = [(key, source) for key, source in dockerunit.given_twice(facts.unit, files, {ch.opts_file: ch.content}, data)
             if key not in _NOT_OURS_TO_JUDGE]
    for key, source in twice:
        result.note("failed", f"dockerd would refuse to start: {key} comes both as a flag ({source.where()}) and from "
                    f"{ch.config_file} (\"the following directives are specified both as a flag and in the "
                    f"configuration file: {key}\")", f"remove {key} from {ch.config_file}, or the flag from "
                    f"{source.file}, then run the wizard again")
    return not twice


def _current_json(state: FileState) -> dict[str, Any]:
    try:
        data = json.loads(state.data or b"{}")
    except ValueError:
        return {}  # _edit_daemon_json names the problem
    return data if isinstance(data, dict) else {}


def _channel_note(a: Answers, facts: Facts, ch: dockerunit.Channels, put: dict[str, Any], result: Plan) -> None:
    """Say through which channel dockerd gets each setting where the changes' reasons do not: flags from
    another file, nothing at all."""
    unit, config = facts.unit, ch.config_file
    for setting in ch.as_flags:
        if not ch.ours(setting):
            result.note("ok", f"dockerd gets --{setting} from {ch.flags[setting][-1].where()}")
    if a.docker.daemon_json:
        return
    if unit is None:
        result.note("ok", f"no {a.docker.service} unit found and docker.daemon_json is null: dockerd gets --bip "
                    f"and --mtu only if its start command passes ${ch.combined_key} from {ch.opts_file}")
    elif "mtu" in put:
        mtu = put["mtu"]
        result.note("warn", f"docker.daemon_json is null and {unit.name} passes no --mtu: containers get MTU 1500"
                    + (f", not flannel's {mtu}" if mtu != 1500 else ""), f"set docker.daemon_json: {config}")


def _opts_why(facts: Facts, ch: dockerunit.Channels) -> str:
    """Why the opts file is written, whether dockerd reads it (the plan says which channel it is), and
    whether flanneld rewrites it too (then its flags shaped these bytes)."""
    unit, post = facts.unit, ch.flanneld
    also = "" if post is None else (f"; flanneld's ExecStartPost ({dockerunit.SCRIPT} {post.flags()}, in "
                                    f"{post.source}) writes it too, at every restart")
    if unit is None:
        return "as mk-docker-opts.sh writes it" + also
    variables = sorted({s.variable for setting in ch.as_flags if ch.ours(setting) for s in ch.flags[setting]
                        if s.file == ch.opts_file and s.variable})
    if variables:
        return (f"as mk-docker-opts.sh writes it; {unit.name} passes {', '.join('$' + v for v in variables)} to "
                f"dockerd{also}")
    return f"as mk-docker-opts.sh writes it; {unit.name} does not pass it to dockerd{also}"


def _daemon_why(facts: Facts, ch: dockerunit.Channels, put: dict[str, Any], drop: list[str]) -> str:
    unit = facts.unit
    parts = []
    if put:
        flags = [f"--{k}" for k in put]
        named = (f"no {flags[0]} flag" if len(flags) == 1 else f"neither {flags[0]} nor {flags[1]}" if len(flags) == 2
                 else f"none of {_listed(list(put), flags=True)}")
        why = "no docker unit found, and dockerd reads this file by default" if unit is None else (
            f"{unit.name} passes {named}")
        parts.append(f"{_listed(list(put))}: {why}")
    if drop:
        who = unit.name if unit is not None else "its unit"
        parts.append(f"{_listed(drop)} taken out: {who} passes {'them as flags' if len(drop) > 1 else 'it as a flag'}, and "
                     "dockerd refuses a setting given both ways")
    return "; ".join(parts)


def _route_checks(a: Answers, facts: Facts, iface: ipaddress.IPv4Interface, opts_file: str, result: Plan) -> None:
    """mk-docker-opts.sh's refusal, exactly as narrow as the script's grep; and a route into part of the
    lease, which the script lets through but which takes traffic for docker0's containers elsewhere."""
    subnet = str(iface)
    refused = dockerunit.refused_routes(subnet, facts.routes)
    if refused:
        found = dockerunit.script_subnet(subnet)
        result.note("failed", "Your routing table already contains the subnet: " + "\n".join(refused),
                    f"that is mk-docker-opts.sh's refusal (`ip route show | grep {found} | grep via` matched): it "
                    f"writes {opts_file} and then exits 1, which fails the unit that runs it (flanneld.service's "
                    f"ExecStartPost= in flannel's package). The wizard changes nothing: remove that route, or give "
                    "flannel another network")
        return
    for route in facts.routes:
        if route.gateway and route.dst != iface.network and route.dst.subnet_of(iface.network):
            result.note("warn", f"{dockerunit.route_line(route)} sends part of this node's lease {iface.network} away "
                        f"from {a.docker.bridge} (mk-docker-opts.sh does not refuse it: it greps for {iface.network} "
                        "only)", "remove that route unless it is meant to take those addresses")


def _cni_holds(facts: Facts, network: ipaddress.IPv4Network) -> str | None:
    for cidr in facts.cni.ipv4 if facts.cni else ():
        if ipaddress.IPv4Interface(cidr).ip in network:
            return cidr
    return None


def _cni_fix(a: Answers) -> str:
    return (f"this node's pods use flannel's CNI plugin: leave {a.docker.bridge} off flannel's subnet (run with "
            f"--skip docker); or, to give the subnet to docker, stop using the CNI plugin here and delete the bridge "
            f"(ip link delete {CNI_BRIDGE})")


def plan(answers: Answers, facts: Facts) -> Plan:
    a = answers
    result = Plan()
    env = facts.subnet_env
    if env is None:
        if facts.lease == "restart-skipped":
            result.note("warn", f"skipped: {a.flanneld.subnet_file} does not exist yet because flanneld was not restarted",
                        "restart flanneld, then run `flannel-wizard apply FILE --only docker,cgroup`")
            result.note("skipped", "skipped: waiting for flanneld")
        elif facts.lease == "pending":
            _plan_pending(a, facts, result)
        else:
            result.note("failed", f"{a.flanneld.subnet_file} does not exist", "run the flanneld step first (or check flanneld)")
        return result
    subnet, mtu_text = env.get("FLANNEL_SUBNET", ""), env.get("FLANNEL_MTU", "")
    try:
        iface = ipaddress.IPv4Interface(subnet)
        mtu = int(mtu_text)
    except ValueError:
        result.note("failed", f"{a.flanneld.subnet_file} has no usable FLANNEL_SUBNET/FLANNEL_MTU ({subnet!r}, {mtu_text!r})",
                    "restart flanneld so it writes the file again")
        return result
    held = _cni_holds(facts, iface.network)
    if held:
        result.note("failed", f"{CNI_BRIDGE} already holds {held} on this node's lease {iface.network}: flannel's CNI "
                    f"plugin gave that subnet to its pods, and {a.docker.bridge} on the same subnet would break them "
                    f"(two bridges on one subnet: the node's route to {iface.network} leads to only one)", _cni_fix(a))
        return result
    files = _channels(a, facts, env, result, pending=False)
    if files is None:
        return result
    ch = files.channels
    result.output = Output(ch.opts_file, ch.combined_key, ch.config_file)
    _route_checks(a, facts, iface, ch.opts_file, result)
    if result.failed:
        return result
    opts_state = facts.files.get(ch.opts_file) or FileState(None)
    result.add(FileWrite(ch.opts_file, ch.content.encode(), opts_state, why=_opts_why(facts, ch)))
    if files.daemon_json is not None:
        result.add(FileWrite(ch.config_file, files.daemon_json, facts.files.get(ch.config_file) or FileState(None),
                             why=files.daemon_why))
    files_change = any(not c.in_place() for c in result.changes)
    if facts.bridge is None:
        result.note("ok", f"{a.docker.bridge} does not exist yet; docker creates it on {subnet} when it starts")
    else:
        result.add(BridgeAddress(a.docker.bridge, subnet, mtu, facts.bridge))
    result.add(Restart(a.docker.service, files_change, why="its options changed" if files_change else ""))
    return result


def _plan_pending(a: Answers, facts: Facts, result: Plan) -> None:
    """flanneld takes its lease earlier in this run: list every change with what is known now, and
    show the files as they would be for the first lease in the range."""
    try:
        rng = flannel.subnet_range(facts.config)
    except (flannel.ConfigProblem, ValueError) as exc:
        result.note("failed", f"the flannel network is not usable: {exc}", "fix network.* in the answers")
        return
    mtu = flannel.backend_mtu(facts.config.get("Backend") or {}, facts.iface_mtu)
    example = f"{rng.first + 1}/{rng.subnet_len}"
    example_env = {"FLANNEL_NETWORK": str(rng.network), "FLANNEL_SUBNET": example, "FLANNEL_MTU": str(mtu),
                   "FLANNEL_IPMASQ": "true" if a.flanneld.ip_masq else "false"}
    example_for = f"a lease of {example}"
    held = _cni_holds(facts, rng.network)
    if held:
        result.note("warn", f"{CNI_BRIDGE} holds {held} in flannel's network {rng.network}: if flanneld keeps that "
                    f"lease, the docker step will refuse to put {a.docker.bridge} on it", _cni_fix(a))
    result.note("ok", f"{a.docker.bridge} goes onto the /{rng.subnet_len} that flanneld leases in {rng.network}, "
                f"MTU {mtu}; the values are known once flanneld has written {a.flanneld.subnet_file}")
    files = _channels(a, facts, example_env, result, pending=True)
    if files is None:
        return
    ch = files.channels
    result.output = Output(ch.opts_file, ch.combined_key, ch.config_file)
    result.add(FileWrite(ch.opts_file, None, facts.files.get(ch.opts_file) or FileState(None),
                         why=_opts_why(facts, ch), pending_on=LEASE, example=ch.content.encode(),
                         example_for=example_for))
    state = facts.files.get(ch.config_file) or FileState(None)
    if files.daemon_json is not None and not files.needs_lease:  # only taken out: known now
        result.add(FileWrite(ch.config_file, files.daemon_json, state, why=files.daemon_why))
    elif a.docker.daemon_json and files.needs_lease:
        result.add(FileWrite(ch.config_file, None, state, why=files.daemon_why, pending_on=LEASE,
                             example=files.daemon_json if files.daemon_json is not None else state.data,
                             example_for=example_for))
    if facts.bridge is None:
        result.note("ok", f"{a.docker.bridge} does not exist yet; docker creates it on the lease when it starts")
    else:
        result.add(BridgeAddress(a.docker.bridge, "", mtu, facts.bridge, pending_on=LEASE,
                                 expect=f"the /{rng.subnet_len} flanneld leases in {rng.network}"))
    result.add(Restart(a.docker.service, True, why="its options changed"))


def verify(ctx: Context, facts: Facts) -> list[Check]:
    a = ctx.answers
    env = read_subnet_env(ctx)
    if env is None:
        return []
    checks: list[Check] = []
    subnet, mtu = env.get("FLANNEL_SUBNET", ""), int(env.get("FLANNEL_MTU", "0") or 0)
    info = ctx.node.links.link(a.docker.bridge)
    later = ctx.deferred_restarts.get(a.docker.service)
    if info is None and later:
        checks.append(Note("ok", f"{a.docker.bridge} does not exist yet: {a.docker.service} creates it on {subnet} when it "
                           f"restarts after the {later} step"))
    elif info is None:
        status = "warn" if a.docker.service in ctx.skipped_restarts else "failed"
        checks.append(Note(status, f"{a.docker.bridge} does not exist", f"start {a.docker.service}; it creates the bridge"))
    elif info.ipv4 != (subnet,) or info.mtu != mtu:
        checks.append(Note("failed", f"{a.docker.bridge} is {', '.join(info.ipv4) or 'unaddressed'} mtu {info.mtu}, "
                           f"not {subnet} mtu {mtu}", "something else manages the bridge; check docker's --bip"))
    else:
        checks.append(Note("ok", f"{a.docker.bridge} has FLANNEL_SUBNET {subnet} and FLANNEL_MTU {mtu}"))
    return checks


STEP = Step("docker", "docker bridge on flannel's subnet", inspect, plan, verify, needs=("network", "etcd", "flanneld"),
            restarts=lambda ctx: (ctx.answers.docker.service,))
