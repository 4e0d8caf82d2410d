"""The test lab: real etcd servers, throwaway network namespaces, and the stand-ins on PATH."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDINS = Path(__file__).resolve().parent / "standins"
NS_PREFIX = "fwtest-"


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout, **kw)


class Netns:
    def __init__(self) -> None:
        self.name = NS_PREFIX + uuid.uuid4().hex[:8]
        run("ip", "netns", "add", self.name)
        self.ip("link", "set", "lo", "up")
        self.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")

    def ip(self, *args: str) -> str:
        return run("ip", "-n", self.name, *args).stdout

    def exec(self, *argv: str, **kw) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.name, *argv, **kw)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        pids = run("ip", "netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        run("ip", "netns", "del", self.name, check=False)


class Etcd:
    """A real etcd server on loopback (of a namespace, when given), with optional TLS and auth."""

    def __init__(self, netns: Netns | None = None, tls: dict[str, str] | None = None, port: int | None = None) -> None:
        self.netns = netns
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="fwtest-etcd-"))
        self.port = port or free_port()
        self.peer = free_port() if port is None else port + 1
        scheme = "https" if tls else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _argv(self) -> list[str]:
        argv = [
            "etcd", "--name", "fwtest", "--data-dir", str(self.dir / "data"),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer}",
            "--initial-cluster", f"fwtest=http://127.0.0.1:{self.peer}", "--enable-v2",
            "--log-level", "error", "--logger", "zap",
        ]
        if self.tls:
            argv += ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                     "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        return (self.netns.prefix() if self.netns else []) + argv

    def ctl(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["etcdctl", "--endpoints", self.endpoint, "--dial-timeout", "2s", "--command-timeout", "5s"]
        if self.tls:
            argv += ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"], "--key", self.tls["client_key"]]
        if user:
            argv += ["--user", user]
        argv += list(args)
        return run(*((self.netns.prefix() if self.netns else []) + argv), check=check,
                   env={**os.environ, "ETCDCTL_API": "3"})

    def start(self) -> None:
        with open(self.dir / "etcd.log", "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=log, start_new_session=True)
        wait_for(lambda: self.ctl("endpoint", "health", check=False).returncode == 0 or self._died(), 20, "etcd to answer")
        if self._died():
            raise RuntimeError(f"etcd exited: {(self.dir / 'etcd.log').read_text()[-2000:]}")

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def enable_auth(self, user: str, password: str) -> None:
        self.ctl("user", "add", f"root:{password}-root")
        self.ctl("user", "grant-role", "root", "root")
        self.ctl("user", "add", f"{user}:{password}")
        self.ctl("role", "add", "flannel")
        self.ctl("role", "grant-permission", "--prefix=true", "flannel", "readwrite", "/")
        self.ctl("user", "grant-role", user, "flannel")
        self.ctl("auth", "enable")

    def get(self, key: str, user: str | None = None) -> str | None:
        out = self.ctl("get", key, "--print-value-only", user=user).stdout
        return out[:-1] if out.endswith("\n") else (out or None)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def standin_bin(target: Path) -> Path:
    """A directory with `systemctl`, `docker` and `flanneld` wrappers that run the stand-ins with this Python."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("systemctl", "docker", "flanneld"):
        script = target / name
        # -S: the stand-ins use the standard library only, and skipping site makes each call cheap
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{STANDINS / (name + ".py")}" "$@"\n')
        script.chmod(0o755)
    return target


def wizard_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wizard", *args]
