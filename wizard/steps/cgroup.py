"""cgroup: one cgroup driver for kubelet and the container runtime, written on both sides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wizard import cgroupfiles, flannel, runtimes
from wizard.changes import FileWrite, Restart
from wizard.node.files import FileState, NotText, decode_text
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.steps import Check, Context

CRIO_DROPIN = f"{runtimes.CRIO_DROPINS}/99-flannel-wizard-cgroup.conf"
WHY = {
    "systemd": "PID 1 is systemd, which already manages cgroups. Kubernetes recommends the systemd driver "
               "then: two managers with their own view of the cgroup tree make the node unstable under pressure.",
    "cgroupfs": "PID 1 is not systemd, so there is no systemd cgroup manager to follow: cgroupfs is the right driver.",
}


@dataclass
class Facts:
    runtime: str
    runtime_driver: runtimes.Driver
    kubelet_driver: runtimes.Driver
    init_systemd: bool
    runtime_file: str  # the file the runtime's driver is written to
    runtime_state: FileState
    kubelet_env: FileState
    kubelet_config: FileState
    kubelet_from_cri: str = ""  # why kubelet takes the runtime's driver (KEP-4033); "" when it uses its own
    states: dict[str, FileState] = field(default_factory=dict)  # each file a driver's `where` names
    restarts_seen: int = 0  # how many restarts the run had made when these facts were read


@dataclass(frozen=True)
class Output:
    target: str  # the driver both will use
    why: str  # in the operator's words
    recommended: str  # what PID 1 calls for
    recommendation: str  # why
    changing: tuple[str, ...] = ()  # whose driver changes: the runtime's name, "kubelet"


def runtime_file(answers: Answers, runtime: str) -> str:
    if runtime == "docker":
        return answers.docker.daemon_json or "/etc/docker/daemon.json"
    return runtimes.CONTAINERD_CONFIG if runtime == "containerd" else CRIO_DROPIN


def inspect(ctx: Context) -> Facts:
    node, a = ctx.node, ctx.answers
    name = runtimes.runtime(node, a)
    version = runtimes.containerd_version(node) if name == "containerd" else None
    if name == "containerd":
        rt = runtimes.containerd_driver(node, major=version[0] if version else None)
    else:
        # a runtime an earlier step changed waits for this step's restart: the running daemon's answer is
        # about to be out of date, its configuration is what it will run with
        pending = runtimes.runtime_service(a, name) in ctx.deferred_restarts
        rt = runtimes.runtime_driver(node, a, name, ask_daemon=not pending)
    kl = runtimes.kubelet(node, a, name, version)
    path = rt.where.path if rt.where and rt.where.path else runtime_file(a, name)
    states = {where.path: ctx.file_state(where.path)
              for where in (rt.where, kl.driver.where) if where is not None and where.path and not where.refused}
    return Facts(name, rt, kl.driver, runtimes.systemd_is_init(node), path, ctx.file_state(path),
                 ctx.file_state(a.cgroup.kubelet_env), ctx.file_state(a.cgroup.kubelet_config), kl.from_cri, states,
                 len(ctx.restarted))


def target(answers: Answers, facts: Facts) -> Output:
    natural = "systemd" if facts.init_systemd else "cgroupfs"
    chosen = answers.cgroup.driver
    if chosen != "auto":
        return Output(chosen, "as the answers say", natural, WHY[natural])
    return Output(natural, "PID 1 is systemd" if facts.init_systemd else "PID 1 is not systemd", natural, WHY[natural])


def _text(state: FileState, path: str) -> str | None:
    """The text of a file this step edits: a byte that is not UTF-8 is named (NotText), not replaced."""
    return decode_text(state.data, path) if state.data is not None else None


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    try:
        return _plan(answers, facts, result)
    except NotText as exc:
        result.note("failed", exc.what, exc.fix)
        return result


def _runtime_where(facts: Facts) -> runtimes.Where:
    if facts.runtime_driver.where is not None:
        return facts.runtime_driver.where
    kind: runtimes.Kind = {"docker": "json", "containerd": "containerd"}.get(facts.runtime, "crio-dropin")  # type: ignore[assignment]
    return runtimes.Where(kind, facts.runtime_file)


def _kubelet_where(answers: Answers, facts: Facts) -> runtimes.Where:
    if facts.kubelet_driver.where is not None:
        return facts.kubelet_driver.where
    a = answers.cgroup
    env_text = _text(facts.kubelet_env, a.kubelet_env) or ""
    if runtimes.kubelet_flag(flannel.parse_env(env_text).get("KUBELET_ARGS", "")) is not None:
        return runtimes.Where("env-flag", a.kubelet_env, "KUBELET_ARGS", "cgroup-driver")
    return runtimes.Where("yaml", a.kubelet_config)


def _state(facts: Facts, answers: Answers, path: str) -> FileState:
    if path in facts.states:
        return facts.states[path]
    known = {facts.runtime_file: facts.runtime_state, answers.cgroup.kubelet_env: facts.kubelet_env,
             answers.cgroup.kubelet_config: facts.kubelet_config}
    return known.get(path, FileState(None))


WHAT = {"json": "exec-opts native.cgroupdriver", "containerd": "SystemdCgroup", "crio-dropin": "cgroup_manager",
        "yaml": "cgroupDriver", "env-flag": ""}


def _write(where: runtimes.Where, state: FileState, want: str, result: Plan) -> FileWrite | None:
    """The one write that sets the driver where the service reads it; None (with a failed note) when the
    wizard must not write there or cannot read the file."""
    if where.refused is not None:
        result.note("failed", *where.refused)
        return None
    path = where.path
    text = _text(state, path)
    try:
        if where.kind == "json":
            new = cgroupfiles.docker_daemon_json(text, want)
        elif where.kind == "containerd":
            new = cgroupfiles.containerd_config(text, want, where.containerd)
        elif where.kind == "crio-dropin":
            new = cgroupfiles.crio_dropin(want)
        elif where.kind == "yaml":
            new = cgroupfiles.kubelet_config(text, want)
        else:
            new = cgroupfiles.env_flag(text or "", want, where.variable, where.flag)
    except Exception as exc:  # json, tomlkit and ruamel each raise their own parse errors
        kind = {"json": "JSON", "containerd": "TOML", "yaml": "YAML"}.get(where.kind, "an environment file")
        result.note("failed", f"{path} is not valid {kind}: {exc}", "fix the file by hand")
        return None
    what = WHAT[where.kind] or f"--{where.flag} in {where.variable}"
    if where.why:
        result.note("ok", f"the driver goes to {path} ({what})", where.why)
    return FileWrite(path, new.encode(), state, why=what)


def _plan(answers: Answers, facts: Facts, result: Plan) -> Plan:
    a = answers
    out = target(a, facts)
    result.output = out
    rt, kl, want = facts.runtime_driver, facts.kubelet_driver, out.target
    result.note("ok", f"{facts.runtime} uses {rt.driver} ({rt.source}); kubelet uses {kl.driver} ({kl.source})")
    problems = [*rt.problems, *kl.problems]
    for what, fix in problems:
        result.note("failed", what, fix)
    if problems:
        return result
    if facts.kubelet_from_cri:
        result.note("ok", facts.kubelet_from_cri, f"so kubelet will use {facts.runtime}'s driver: {want}")
    elif rt.driver != kl.driver:
        result.note("warn", runtimes.mismatch_message(kl.driver, facts.runtime, rt.driver),
                    f"both will use {want} ({out.why})")
    runtime_changes: list[FileWrite] = []
    if rt.driver != want:
        where = _runtime_where(facts)
        change = _write(where, _state(facts, a, where.path), want, result)
        if change is None:
            return result
        runtime_changes.append(change)
    kubelet_changes: list[FileWrite] = []
    if kl.driver != want and not facts.kubelet_from_cri:
        where = _kubelet_where(a, facts)
        change = _write(where, _state(facts, a, where.path), want, result)
        if change is None:
            return result
        kubelet_changes.append(change)
    for change in runtime_changes + kubelet_changes:
        result.add(change)
    changing = tuple(who for who, changes in ((facts.runtime, runtime_changes), ("kubelet", kubelet_changes)) if changes)
    result.output = Output(out.target, out.why, out.recommended, out.recommendation, changing)
    if not runtime_changes and not kubelet_changes:
        result.note("ok", f"kubelet and {facts.runtime} both use {want}")
    result.add(Restart(runtimes.runtime_service(a, facts.runtime), bool(runtime_changes), why="cgroup driver"))
    result.add(Restart(a.cgroup.kubelet_service, bool(runtime_changes or kubelet_changes), why="cgroup driver"))
    return result


def verify(ctx: Context, facts: Facts) -> list[Check]:
    node, a = ctx.node, ctx.answers
    name = facts.runtime
    service = runtimes.runtime_service(a, name)
    # a runtime that was not restarted still runs with its old driver: read its file instead
    if name == "containerd":
        version = runtimes.containerd_version(node)
        rt = runtimes.containerd_driver(node, major=version[0] if version else None)
    elif (facts.runtime_driver.asked_daemon and service not in ctx.restarted[facts.restarts_seen:]
          and service not in ctx.skipped_restarts):
        # the daemon was asked while inspecting and has not restarted since (a change to its driver would
        # have restarted it): its answer stands, and `docker info` runs once per run
        version, rt = None, facts.runtime_driver
    else:
        version = None
        rt = runtimes.runtime_driver(node, a, name, ask_daemon=service not in ctx.skipped_restarts)
    kl = runtimes.kubelet(node, a, name, version)
    if kl.from_cri:
        return [Note("ok", f"kubelet takes {name}'s driver: {rt.driver}", kl.from_cri)]
    if rt.driver != kl.driver.driver:
        return [Note("failed", runtimes.mismatch_message(kl.driver.driver, name, rt.driver),
                     f"{name}: {rt.source}; kubelet: {kl.driver.source}")]
    return [Note("ok", f"kubelet and {name} both report {rt.driver}")]


def restarts(ctx: Context) -> tuple[str, ...]:
    return runtimes.runtime_service(ctx.answers, runtimes.runtime(ctx.node, ctx.answers)), ctx.answers.cgroup.kubelet_service


STEP = Step("cgroup", "cgroup driver for kubelet and the runtime", inspect, plan, verify, restarts=restarts)
