"""cgroup: one cgroup driver for kubelet and the container runtime, written on both sides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wizard import cgroupfiles, flannel, runtimes
from wizard.changes import FileWrite, Restart
from wizard.node.files import NotText, decode_text
from wizard.steps import Note, Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.files import FileState
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
    path = runtime_file(a, name)
    return Facts(name, runtimes.runtime_driver(node, a, name), runtimes.kubelet_driver(node, a),
                 runtimes.systemd_is_init(node), path, ctx.file_state(path),
                 ctx.file_state(a.cgroup.kubelet_env), ctx.file_state(a.cgroup.kubelet_config))


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


def _plan(answers: Answers, facts: Facts, result: Plan) -> Plan:
    a = answers
    out = target(a, facts)
    result.output = out
    rt, kl, want = facts.runtime_driver, facts.kubelet_driver, out.target
    result.note("ok", f"{facts.runtime} uses {rt.driver} ({rt.source}); kubelet uses {kl.driver} ({kl.source})")
    if rt.driver != kl.driver:
        result.note("warn", runtimes.mismatch_message(kl.driver, facts.runtime, rt.driver),
                    f"both will use {want} ({out.why})")
    runtime_changes: list[FileWrite] = []
    path, state = facts.runtime_file, facts.runtime_state
    if rt.driver != want:
        if facts.runtime == "docker":
            text = _text(state, path)
            try:
                new = cgroupfiles.docker_daemon_json(text, want)
            except ValueError as exc:
                result.note("failed", f"{path} is not valid JSON: {exc}", "fix the file by hand")
                return result
            runtime_changes.append(FileWrite(path, new.encode(), state, why="exec-opts native.cgroupdriver"))
        elif facts.runtime == "containerd":
            text = _text(state, path)
            try:
                new = cgroupfiles.containerd_config(text, want)
            except Exception as exc:  # tomlkit raises several parse error types
                result.note("failed", f"{path} is not valid TOML: {exc}", "fix the file by hand")
                return result
            runtime_changes.append(FileWrite(path, new.encode(), state, why="SystemdCgroup"))
        else:
            runtime_changes.append(FileWrite(path, cgroupfiles.crio_dropin(want).encode(), state, why="cgroup_manager"))
    kubelet_changes: list[FileWrite] = []
    if kl.driver != want:
        env_text = _text(facts.kubelet_env, a.cgroup.kubelet_env) or ""
        has_flag = runtimes.kubelet_flag(flannel.parse_env(env_text).get("KUBELET_ARGS", "")) is not None
        if has_flag:
            kubelet_changes.append(FileWrite(a.cgroup.kubelet_env, cgroupfiles.kubelet_env(env_text, want).encode(),
                                             facts.kubelet_env, why="--cgroup-driver in KUBELET_ARGS"))
        cfg_state = facts.kubelet_config
        if cfg_state.data is not None or not has_flag:
            text = _text(cfg_state, a.cgroup.kubelet_config)
            try:
                new = cgroupfiles.kubelet_config(text, want)
            except Exception as exc:  # ruamel raises several parse error types
                result.note("failed", f"{a.cgroup.kubelet_config} is not valid YAML: {exc}", "fix the file by hand")
                return result
            kubelet_changes.append(FileWrite(a.cgroup.kubelet_config, new.encode(), cfg_state, why="cgroupDriver"))
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
    rt = runtimes.runtime_driver(node, a, name, ask_daemon=service not in ctx.skipped_restarts)
    kl = runtimes.kubelet_driver(node, a)
    if rt.driver != kl.driver:
        return [Note("failed", runtimes.mismatch_message(kl.driver, name, rt.driver),
                     f"{name}: {rt.source}; kubelet: {kl.source}")]
    return [Note("ok", f"kubelet and {name} both report {rt.driver}")]


STEP = Step("cgroup", "cgroup driver for kubelet and the runtime", inspect, plan, verify)
