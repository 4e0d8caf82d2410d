"""Which container runtime a node has, and which cgroup driver it and kubelet use (read only)."""

from __future__ import annotations

import json
import shlex
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wizard import flannel

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node import Node

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CRIO_CONFIG = "/etc/crio/crio.conf"
CRIO_DROPINS = "/etc/crio/crio.conf.d"
# containerd's CRI runc options table, by config version.
CONTAINERD_RUNC = {
    2: ("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "options"),
    3: ("plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options"),
}
DAEMONS = {"docker": "dockerd", "containerd": "containerd", "cri-o": "crio"}
SERVICES = {"containerd": "containerd", "cri-o": "crio"}


@dataclass(frozen=True)
class Driver:
    driver: str
    source: str  # where it was read, in the operator's words


def runtime(node: Node, answers: Answers) -> str:
    chosen = answers.cgroup.runtime
    if chosen != "auto":
        return chosen
    daemon_json = answers.docker.daemon_json
    if node.commands.which("dockerd") or (daemon_json and node.files.exists(daemon_json)):
        return "docker"
    if node.files.exists(CONTAINERD_CONFIG) or node.commands.which("containerd"):
        return "containerd"
    if node.files.exists(CRIO_CONFIG) or node.files.list(CRIO_DROPINS) or node.commands.which("crio"):
        return "cri-o"
    return "docker"  # the article's runtime


def runtime_service(answers: Answers, name: str) -> str:
    return answers.docker.service if name == "docker" else SERVICES[name]


def systemd_is_init(node: Node) -> bool:
    return node.kernel.init_name() == "systemd"


def load_json(node: Node, path: str) -> dict[str, Any] | None:
    text = node.files.read_text(path)
    if text is None or not text.strip():
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the top level is not a JSON object")
    return data


def docker_exec_opt(data: dict[str, Any] | None) -> str | None:
    for opt in (data or {}).get("exec-opts", []) or []:
        key, _, value = str(opt).partition("=")
        if key.strip() == "native.cgroupdriver":
            return value.strip()
    return None


def runtime_driver(node: Node, answers: Answers, name: str, ask_daemon: bool = True) -> Driver:
    if name == "docker":
        if ask_daemon:
            result = node.commands.run("docker", "info", "--format", "{{.CgroupDriver}}", timeout=10)
            answer = result.out.strip()
            if result.ok and answer in ("systemd", "cgroupfs"):
                return Driver(answer, "docker info")
        path = answers.docker.daemon_json
        if path:
            try:
                found = docker_exec_opt(load_json(node, path))
            except ValueError:
                found = None
            if found:
                return Driver(found, f"{path} exec-opts")
        default = "systemd" if node.kernel.cgroup_v2() else "cgroupfs"
        return Driver(default, "docker's default on this cgroup version")
    if name == "containerd":
        text = node.files.read_text(CONTAINERD_CONFIG)
        if text:
            try:
                doc = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                doc = {}
            table: Any = doc
            for part in CONTAINERD_RUNC.get(int(doc.get("version", 2)), CONTAINERD_RUNC[2]):
                table = table.get(part, {}) if isinstance(table, dict) else {}
            if isinstance(table, dict) and "SystemdCgroup" in table:
                return Driver("systemd" if table["SystemdCgroup"] else "cgroupfs", f"{CONTAINERD_CONFIG} SystemdCgroup")
        return Driver("cgroupfs", "containerd's default")
    manager, source = "systemd", "CRI-O's default"
    for path in [CRIO_CONFIG, *node.files.list(CRIO_DROPINS)]:
        text = node.files.read_text(path)
        if not text or not path.endswith(".conf"):
            continue
        try:
            value = tomllib.loads(text).get("crio", {}).get("runtime", {}).get("cgroup_manager")
        except tomllib.TOMLDecodeError:
            continue
        if value:
            manager, source = value, f"{path} cgroup_manager"
    return Driver(manager, source)


def kubelet_flag(args: str) -> str | None:
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    for i, word in enumerate(words):
        if word.startswith("--cgroup-driver="):
            return word.split("=", 1)[1]
        if word == "--cgroup-driver" and i + 1 < len(words):
            return words[i + 1]
    return None


def kubelet_driver(node: Node, answers: Answers) -> Driver:
    """kubelet's own precedence: a --cgroup-driver flag beats the config file, which beats the default."""
    env = node.files.read_text(answers.cgroup.kubelet_env)
    if env:
        flag = kubelet_flag(flannel.parse_env(env).get("KUBELET_ARGS", ""))
        if flag:
            return Driver(flag, f"--cgroup-driver in KUBELET_ARGS of {answers.cgroup.kubelet_env}")
    text = node.files.read_text(answers.cgroup.kubelet_config)
    if text:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict) and data.get("cgroupDriver"):
            return Driver(str(data["cgroupDriver"]), f"cgroupDriver in {answers.cgroup.kubelet_config}")
    return Driver("cgroupfs", "kubelet's default")


def mismatch_message(kubelet: str, runtime_name: str, runtime_driver_name: str) -> str:
    """kubelet's own words, so the operator recognises the error they saw."""
    return (
        f'misconfiguration: kubelet cgroup driver: "{kubelet}" is different from '
        f'{runtime_name} cgroup driver: "{runtime_driver_name}"'
    )
