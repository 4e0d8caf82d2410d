"""Kernel state the steps read: the user, loaded modules, sysctls, swap, free ports, PID 1, cgroup v2.

Read where it is (/proc, /sys), never under --root: a staging root has files, not a kernel.
"""

from __future__ import annotations

import os
import socket


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


class Kernel:
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def sysctl(self, key: str) -> str | None:
        """The value of /proc/sys/KEY (`net/ipv4/ip_forward`), or None when the kernel has no such key."""
        return _read(f"/proc/sys/{key}")

    def module_loaded(self, name: str) -> bool:
        if os.path.isdir(f"/sys/module/{name}"):
            return True
        modules = _read("/proc/modules") or ""
        if any(line.split(" ", 1)[0] == name for line in modules.splitlines()):
            return True
        # br_netfilter built into the kernel shows only through its sysctls
        return name == "br_netfilter" and os.path.isdir("/proc/sys/net/bridge")

    def swaps(self) -> list[str]:
        return (_read("/proc/swaps") or "").splitlines()[1:]

    def udp_port_free(self, port: int) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def init_name(self) -> str | None:
        """What runs as PID 1 ("systemd" on a normal node)."""
        return _read("/proc/1/comm")

    def cgroup_v2(self) -> bool:
        return os.path.exists("/sys/fs/cgroup/cgroup.controllers")
