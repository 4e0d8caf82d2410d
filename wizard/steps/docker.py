"""docker: docker0 moved onto flannel's subnet — opts file as mk-docker-opts.sh writes it, daemon.json,
the bridge's address and MTU, and a restart."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from wizard import flannel
from wizard.changes import BridgeAddress, FileWrite, Restart
from wizard.errors import WizardError
from wizard.steps import Note, Plan, Step
from wizard.steps.flanneld import read_subnet_env

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.files import FileState
    from wizard.node.linkinfo import LinkInfo, Route
    from wizard.steps import Check, Context

LEASE = "flanneld's lease"
Lease = Literal["known", "pending", "restart-skipped", "missing"]


@dataclass
class Facts:
    subnet_env: dict[str, str] | None
    opts: FileState
    daemon_json: FileState | None
    bridge: LinkInfo | None
    routes: list[Route]
    iface_mtu: int = 1500
    # known: subnet.env is there · pending: flanneld is (re)started earlier in this run and will write it ·
    # restart-skipped: flanneld could not be restarted (no systemd) · missing: nothing will write it
    lease: Lease = "known"
    config: dict[str, Any] = field(default_factory=dict)  # the flannel config in force


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
    return Facts(
        env,
        ctx.file_state(a.docker.opts_file),
        ctx.file_state(a.docker.daemon_json) if a.docker.daemon_json else None,
        links.link(a.docker.bridge),
        links.routes(),
        iface_mtu(links, a.flanneld.iface)[1],
        lease,
        in_force(ctx),
    )


def _daemon_json(state: FileState, subnet: str, mtu: int, path: str) -> bytes | None:
    """daemon.json with bip and mtu merged in, every other key kept; None when it already says so."""
    from wizard.node.files import decode_text

    text = decode_text(state.data or b"", path)  # edited and written back: a bad byte is named, not replaced
    try:
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise WizardError(f"{path} is not valid JSON: {exc}", "fix the file by hand (dockerd would not start either)") from None
    if not isinstance(data, dict):
        raise WizardError(f"{path} is not a JSON object", "fix the file by hand")
    if data.get("bip") == subnet and data.get("mtu") == mtu:
        return None
    data.update(bip=subnet, mtu=mtu)
    return (json.dumps(data, indent=2) + "\n").encode()


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
    for route in facts.routes:
        if route.gateway and route.dst.prefixlen and iface.network.subnet_of(route.dst):
            result.note("failed", f"Your routing table already contains the subnet: {route}",
                        "mk-docker-opts.sh refuses this too: remove the route, or give flannel another network")
            return result
    opts = a.docker.opts
    try:
        content = flannel.mk_docker_opts(env, opts.individual, opts.combined, opts.combined_key, opts.ip_masq)
    except WizardError as exc:
        result.note("failed", exc.what, exc.fix)
        return result
    result.add(FileWrite(a.docker.opts_file, content.encode(), facts.opts, why="as mk-docker-opts.sh writes it"))
    if a.docker.daemon_json and facts.daemon_json is not None:
        try:
            merged = _daemon_json(facts.daemon_json, subnet, mtu, a.docker.daemon_json)
        except WizardError as exc:
            result.note("failed", exc.what, exc.fix)
            return result
        if merged is not None:
            result.add(FileWrite(a.docker.daemon_json, merged, facts.daemon_json, why="bip and mtu"))
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
    result.note("ok", f"{a.docker.bridge} goes onto the /{rng.subnet_len} that flanneld leases in {rng.network}, "
                f"MTU {mtu}; the values are known once flanneld has written {a.flanneld.subnet_file}")
    opts = a.docker.opts
    try:
        content = flannel.mk_docker_opts(example_env, opts.individual, opts.combined, opts.combined_key, opts.ip_masq)
    except WizardError as exc:
        result.note("failed", exc.what, exc.fix)
        return
    result.add(FileWrite(a.docker.opts_file, None, facts.opts, why="as mk-docker-opts.sh writes it", pending_on=LEASE,
                         example=content.encode(), example_for=example_for))
    if a.docker.daemon_json and facts.daemon_json is not None:
        try:
            merged = _daemon_json(facts.daemon_json, example, mtu, a.docker.daemon_json)
        except WizardError as exc:
            result.note("failed", exc.what, exc.fix)
            return
        result.add(FileWrite(a.docker.daemon_json, None, facts.daemon_json, why="bip and mtu", pending_on=LEASE,
                             example=merged if merged is not None else facts.daemon_json.data, example_for=example_for))
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
    if info is None:
        status = "warn" if a.docker.service in ctx.skipped_restarts else "failed"
        checks.append(Note(status, f"{a.docker.bridge} does not exist", f"start {a.docker.service}; it creates the bridge"))
    elif info.ipv4 != (subnet,) or info.mtu != mtu:
        checks.append(Note("failed", f"{a.docker.bridge} is {', '.join(info.ipv4) or 'unaddressed'} mtu {info.mtu}, "
                           f"not {subnet} mtu {mtu}", "something else manages the bridge; check docker's --bip"))
    else:
        checks.append(Note("ok", f"{a.docker.bridge} has FLANNEL_SUBNET {subnet} and FLANNEL_MTU {mtu}"))
    return checks


STEP = Step("docker", "docker bridge on flannel's subnet", inspect, plan, verify, needs=("network", "etcd", "flanneld"))
