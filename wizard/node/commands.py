"""Subprocesses, every one with a timeout, through `sh`."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 30.0
_SECRET_ENV: set[str] = set()  # variables a secret was read from: no child process inherits them


def keep_from_children(name: str | None) -> None:
    """Never pass this environment variable (it holds the etcd password) to a command the wizard runs."""
    if name:
        _SECRET_ENV.add(name)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    rc: int
    out: str
    err: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class Commands:
    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def run(self, *argv: str, timeout: float = DEFAULT_TIMEOUT_S, input: str | None = None) -> Result:
        import sh  # imported here: `--help` and `validate` never run a command

        exe = self.which(argv[0])
        if exe is None:
            return Result(tuple(argv), 127, "", f"{argv[0]}: command not found")
        # sh's own _timeout watches the clock from a thread that wakes every 0.1 s, which added 0.1 s
        # to every call (measured: 104 ms for `true`); a timer that kills the child costs nothing.
        # a process group of its own: a terminal's Ctrl+C goes to the wizard's process group, and must reach
        # the wizard (which stops after the command in flight) rather than kill the command half-way
        proc = sh.Command(exe)(
            *argv[1:], _bg=True, _bg_exc=False, _ok_code=list(range(256)), _return_cmd=True,
            _in=input if input is not None else "", _tty_out=False, _new_group=True, _env=child_env(),
        )
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            proc.wait()
        except sh.SignalException as exc:
            if expired.is_set():
                return Result(tuple(argv), -1, "", f"{argv[0]} did not answer within {timeout:g}s", timed_out=True)
            return Result(tuple(argv), -1, _text(exc.stdout), _text(exc.stderr) or f"{argv[0]} was killed by signal {-exc.exit_code}")
        finally:
            timer.cancel()
        return Result(tuple(argv), proc.exit_code, _text(proc.stdout), _text(proc.stderr))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
