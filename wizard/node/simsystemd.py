"""The demo's systemd: unit files under the simulated node's root, read the way systemd reads them.

The simulated node does not learn from the answers which files a service reads: as on a real node,
the unit decides. `systemctl restart NAME` looks NAME.service up in /etc/systemd/system, then
/run/systemd/system, then /usr/lib/systemd/system (the first found wins), applies the
NAME.service.d/*.conf drop-ins of all of them in file-name order (/etc's copy of a name wins), and
starts the service with the environment its EnvironmentFile= and Environment= lines give and the
command line its ExecStart= expands to.

The packaged units are written at creation for each service whose binary the scenario installs
(CentOS 7 era, the article's node); a scenario replaces one with `units: {NAME.service: TEXT}` or
removes it with `units: {NAME.service: null}`, and adds drop-ins or /etc overrides under `files:`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wizard import flannel

if TYPE_CHECKING:
    from wizard.node.files import Files

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system")
PACKAGE_DIR = "/usr/lib/systemd/system"

FLANNELD_UNIT = """\
[Unit]
Description=Flanneld overlay address etcd agent
After=network.target
After=network-online.target
Wants=network-online.target
After=etcd.service
Before=docker.service

[Service]
Type=notify
EnvironmentFile=/etc/sysconfig/flanneld
EnvironmentFile=-/etc/sysconfig/docker-network
ExecStart=/usr/bin/flanneld-start $FLANNEL_OPTIONS
ExecStartPost=/usr/libexec/flannel/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker
Restart=on-failure

[Install]
WantedBy=multi-user.target
RequiredBy=docker.service
"""

# dockerd reads /etc/docker/daemon.json unless ExecStart names another with --config-file
DOCKER_UNIT = """\
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target firewalld.service containerd.service
Wants=network-online.target

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
RestartSec=2
Restart=always

[Install]
WantedBy=multi-user.target
"""

# the flannel package's drop-in for docker
DOCKER_FLANNEL_DROPIN = """\
[Service]
EnvironmentFile=-/run/flannel/docker
"""

KUBELET_UNIT = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

CONTAINERD_UNIT = """\
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always

[Install]
WantedBy=multi-user.target
"""

CRIO_UNIT = """\
[Unit]
Description=Container Runtime Interface for OCI (CRI-O)
Documentation=https://github.com/cri-o/cri-o
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/crio
ExecStart=/usr/bin/crio $CRIO_CONFIG_OPTIONS $CRIO_RUNTIME_OPTIONS $CRIO_STORAGE_OPTIONS $CRIO_NETWORK_OPTIONS
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

# binary the scenario installs -> the files its package puts under /usr/lib/systemd/system
PACKAGED: dict[str, dict[str, str]] = {
    "flanneld": {"flanneld.service": FLANNELD_UNIT},
    "dockerd": {"docker.service": DOCKER_UNIT},
    "kubelet": {"kubelet.service": KUBELET_UNIT},
    "containerd": {"containerd.service": CONTAINERD_UNIT},
    "crio": {"crio.service": CRIO_UNIT},
}
DROPINS: dict[str, dict[str, str]] = {
    # flannel's package hands docker its options through this optional file
    "flanneld": {"docker.service.d/flannel.conf": DOCKER_FLANNEL_DROPIN},
}


def install(files: Files, scenario: dict[str, Any]) -> None:
    """Write the packaged units (and the scenario's replacements) under the node's root."""
    binaries = scenario.get("binaries", [])
    wanted: dict[str, str | None] = {}
    for binary in binaries:
        wanted.update(PACKAGED.get(binary, {}))
        wanted.update(DROPINS.get(binary, {}))
    wanted.update(scenario.get("units") or {})
    for name, text in wanted.items():
        path = f"{PACKAGE_DIR}/{name}"
        if text is None:
            files.remove(path)
        else:
            files.write(path, text.encode())


@dataclass
class Unit:
    """A unit as systemd loads it: the unit file with its drop-ins applied (the [Service] lines only)."""

    name: str  # "flanneld.service"
    path: str
    dropins: list[str] = field(default_factory=list)
    environment_files: list[tuple[str, bool]] = field(default_factory=list)  # (path, optional)
    environment: dict[str, str] = field(default_factory=dict)
    exec_start: str = ""


class MissingEnvironmentFile(Exception):
    pass


def unit_name(name: str) -> str:
    return name if "." in name.rsplit("/", 1)[-1] else f"{name}.service"


def load(files: Files, name: str) -> Unit | None:
    """NAME.service with its drop-ins, or None when no unit file by that name exists."""
    name = unit_name(name)
    path = next((f"{d}/{name}" for d in UNIT_DIRS if files.read(f"{d}/{name}") is not None), None)
    if path is None:
        return None
    dropins: dict[str, str] = {}
    for directory in reversed(UNIT_DIRS):  # /etc last, so its copy of a name wins
        for found in files.list(f"{directory}/{name}.d"):
            if found.endswith(".conf"):
                dropins[found.rsplit("/", 1)[1]] = found
    unit = Unit(name, path, [dropins[k] for k in sorted(dropins)])
    for source in [path, *unit.dropins]:
        _apply(unit, files.read_text(source) or "")
    return unit


def _lines(text: str) -> list[tuple[str, str]]:
    """(section, line) for each setting; a trailing backslash continues a line."""
    out: list[tuple[str, str]] = []
    section, pending = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            out.append((section, line))
    return out


def _apply(unit: Unit, text: str) -> None:
    for section, line in _lines(text):
        if section != "Service":
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if key == "EnvironmentFile":
            if not value:
                unit.environment_files.clear()  # an empty assignment resets the list
            else:
                unit.environment_files.append((value.removeprefix("-"), value.startswith("-")))
        elif key == "Environment":
            if not value:
                unit.environment.clear()
            for item in shlex.split(value):
                k, _, v = item.partition("=")
                unit.environment[k] = v
        elif key == "ExecStart":
            unit.exec_start = value  # a service unit has one; an empty assignment clears it


def environment(files: Files, unit: Unit) -> dict[str, str]:
    """What the service starts with: Environment= lines, then each EnvironmentFile= in order."""
    env = dict(unit.environment)
    for path, optional in unit.environment_files:
        text = files.read_text(path)
        if text is None:
            if optional:
                continue
            raise MissingEnvironmentFile(path)
        env.update(flannel.parse_env(text))
    return env


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def command(unit: Unit, env: dict[str, str]) -> list[str]:
    """ExecStart= as systemd expands it: `$VAR` alone splits into words, `${VAR}` stays one word."""
    words = shlex.split(unit.exec_start.lstrip("-@+!:"))
    argv: list[str] = []
    for word in words:
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            argv += env.get(alone.group(1), "").split()
        else:
            argv.append(_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return argv


def flags(args: list[str], booleans: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Go-style flags: `-name=value`, `--name value`, and `-name` alone for a boolean (which never
    takes the next word); a flag given again adds a value."""
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq:
            if name not in booleans and i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            else:
                value = "true"
        out.setdefault(name, []).append(value)
    return out


def not_found(verb: str, name: str) -> str:
    return f"Failed to {verb} {unit_name(name)}: Unit {unit_name(name)} not found."


def job_failed(name: str, why: str = "the control process exited with error code") -> str:
    unit = unit_name(name)
    return (f"Job for {unit} failed because {why}.\n"
            f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.')
