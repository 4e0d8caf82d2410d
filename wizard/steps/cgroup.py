"""cgroup: one cgroup driver for kubelet and the container runtime, written on both sides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wizard import cgroupfiles, flannel, runtimes
from wizard.changes import FileWrite, Restart
from wizard.steps import Note, Plan

if TYPE_CHECKING:
    from wizard.steps import Check, Context

NAME = "cgroup"
TITLE = "cgroup driver for kubelet and the runtime"
CRIO_DROPIN = f"{runtimes.CRIO_DROPINS}/99-flannel-wizard-cgroup.conf"


@dataclass
class Facts:
    runtime: str
    runtime_driver: runtimes.Driver
    kubelet_driver: runtimes.Driver
    target: str


def inspect(ctx: Context) -> Facts:
    node, a = ctx.node, ctx.answers
    name = runtimes.runtime(node, a)
    return Facts(name, runtimes.runtime_driver(node, a, name), runtimes.kubelet_driver(node, a),
                 runtimes.target_driver(node, a))


def _why_target(ctx: Context, target: str) -> str:
    if ctx.answers.cgroup.driver != "auto":
        return "as the answers say"
    return "PID 1 is systemd" if target == "systemd" else "PID 1 is not systemd"


def plan(ctx: Context, facts: Facts) -> Plan:
    a, files = ctx.answers, ctx.node.files
    result = Plan()
    rt, kl, target = facts.runtime_driver, facts.kubelet_driver, facts.target
    result.note("ok", f"{facts.runtime} uses {rt.driver} ({rt.source}); kubelet uses {kl.driver} ({kl.source})")
    if rt.driver != kl.driver:
        result.note("warn", runtimes.mismatch_message(kl.driver, facts.runtime, rt.driver),
                    f"both will use {target} ({_why_target(ctx, target)})")
    runtime_changes: list[FileWrite] = []
    if rt.driver != target:
        if facts.runtime == "docker":
            path = a.docker.daemon_json or "/etc/docker/daemon.json"
            state = files.state(path)
            try:
                new = cgroupfiles.docker_daemon_json(state.data.decode() if state.data else None, target)
            except ValueError as exc:
                result.note("failed", f"{path} is not valid JSON: {exc}", "fix the file by hand")
                return result
            runtime_changes.append(FileWrite(path, new.encode(), state, why="exec-opts native.cgroupdriver"))
        elif facts.runtime == "containerd":
            state = files.state(runtimes.CONTAINERD_CONFIG)
            try:
                new = cgroupfiles.containerd_config(state.data.decode() if state.data else None, target)
            except Exception as exc:  # tomlkit raises several parse error types
                result.note("failed", f"{runtimes.CONTAINERD_CONFIG} is not valid TOML: {exc}", "fix the file by hand")
                return result
            runtime_changes.append(FileWrite(runtimes.CONTAINERD_CONFIG, new.encode(), state, why="SystemdCgroup"))
        else:
            runtime_changes.append(FileWrite(CRIO_DROPIN, cgroupfiles.crio_dropin(target).encode(),
                                             files.state(CRIO_DROPIN), why="cgroup_manager"))
    kubelet_changes: list[FileWrite] = []
    if kl.driver != target:
        env_state = files.state(a.cgroup.kubelet_env)
        env_text = env_state.data.decode() if env_state.data else ""
        has_flag = runtimes.kubelet_flag(flannel.parse_env(env_text).get("KUBELET_ARGS", "")) is not None
        if has_flag:
            kubelet_changes.append(FileWrite(a.cgroup.kubelet_env, cgroupfiles.kubelet_env(env_text, target).encode(),
                                             env_state, why="--cgroup-driver in KUBELET_ARGS"))
        cfg_state = files.state(a.cgroup.kubelet_config)
        if cfg_state.data is not None or not has_flag:
            try:
                new = cgroupfiles.kubelet_config(cfg_state.data.decode() if cfg_state.data else None, target)
            except Exception as exc:  # ruamel raises several parse error types
                result.note("failed", f"{a.cgroup.kubelet_config} is not valid YAML: {exc}", "fix the file by hand")
                return result
            kubelet_changes.append(FileWrite(a.cgroup.kubelet_config, new.encode(), cfg_state, why="cgroupDriver"))
    for change in runtime_changes + kubelet_changes:
        result.add(change)
    if not runtime_changes and not kubelet_changes:
        result.note("ok", f"kubelet and {facts.runtime} both use {target}")
    result.add(Restart(runtimes.runtime_service(a, facts.runtime), bool(runtime_changes), why="cgroup driver"))
    result.add(Restart(a.cgroup.kubelet_service, bool(runtime_changes or kubelet_changes), why="cgroup driver"))
    ctx.shared["cgroup_target"] = target
    return result


def verify(ctx: Context) -> list[Check]:
    node, a = ctx.node, ctx.answers
    name = runtimes.runtime(node, a)
    service = runtimes.runtime_service(a, name)
    # a runtime that was not restarted still runs with its old driver: read its file instead
    rt = runtimes.runtime_driver(node, a, name, ask_daemon=service not in ctx.restart_skipped)
    kl = runtimes.kubelet_driver(node, a)
    if rt.driver != kl.driver:
        return [Note("failed", runtimes.mismatch_message(kl.driver, name, rt.driver),
                     f"{name}: {rt.source}; kubelet: {kl.source}")]
    return [Note("ok", f"kubelet and {name} both report {rt.driver}")]
