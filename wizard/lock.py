"""One run at a time per node and state dir: an exclusive `flock` on STATE_DIR/lock, taken before a run
that changes the node reads anything, and held until it ends.

The kernel drops a flock when its holder dies, so a lock left by a killed run is free again; the file
only says who held it last (pid, command, since when) for the message a second run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from wizard.errors import InputError

if TYPE_CHECKING:
    from wizard.journal import Journal


class LockHeld(InputError):
    """Another run holds the node's lock: nothing was touched."""


class RunLock:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.fd: int | None = None

    @property
    def path(self) -> str:
        return str(self.journal.files.path(f"{self.journal.state_dir}/lock"))

    def acquire(self) -> None:
        self.journal.ensure_dir()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockHeld(
                f"another flannel-wizard run is changing this node: {holder}; nothing was touched",
                f"wait for it to finish (lock: {self.path}), then run again",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({"pid": os.getpid(), "command": _command(),
                                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n").encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays, naming the last holder
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _command() -> str:
    words = [os.path.basename(sys.argv[0]) if sys.argv else "flannel-wizard", *sys.argv[1:]]
    if words and words[0] in ("__main__.py", "-m"):
        words[0] = "flannel-wizard"
    return " ".join(words)[:200]


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, command, since = int(info["pid"]), str(info["command"]), str(info["since"])
    except (ValueError, KeyError, TypeError, OSError):
        return "its holder did not say who it is"
    return f"pid {pid} (`{command}`), since {since}"
