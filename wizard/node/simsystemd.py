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

from typing import TYPE_CHECKING, Any

from wizard import units

if TYPE_CHECKING:
    from wizard.node.files import Files

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


# the unit reading itself is the product's (wizard/units.py): the demo's systemd starts a service
# from exactly what the steps read
Unit = units.Unit
MissingEnvironmentFile = units.MissingEnvironmentFile
unit_name = units.unit_name
load = units.load
environment = units.environment
command = units.command
flags = units.flags


def not_found(verb: str, name: str) -> str:
    return f"Failed to {verb} {unit_name(name)}: Unit {unit_name(name)} not found."


def job_failed(name: str, why: str = "the control process exited with error code") -> str:
    unit = unit_name(name)
    return (f"Job for {unit} failed because {why}.\n"
            f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.')
