"""Run a command on a real pseudo-terminal, read what it draws, and send it keys: for the tests and
the benchmark of the real `flannel-wizard` process (Pilot drives the app in-process instead)."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from fcntl import ioctl


class Terminal:
    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, size: tuple[int, int] = (80, 24),
                 cwd: str | None = None) -> None:
        master, slave = pty.openpty()
        cols, rows = size
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True,
            env={**(env or os.environ), "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}, cwd=cwd,
        )
        os.close(slave)
        self.master = master
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 10.0) -> float:
        """Read until `needle` has been drawn; seconds since the process started."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{needle!r} not drawn within {timeout}s; last output: {self.output[-400:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the process closed the terminal
                    raise TimeoutError(f"terminal closed before {needle!r}; output: {self.output[-400:]!r}") from None
                self.output += chunk
        return time.monotonic() - self.started

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the process did not exit")
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.master, 65536)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
