"""Run the wizard's command line in this process and `kill -9` it right before its K-th crash point.

    FW_KILL_AT=K python tests/killpoint.py apply config.example.yaml --yes ...

Why it exists: the kill-at-every-point sweep (bench/killsweep.py, tests/test_killsweep.py) must stop the
wizard between any two of its effects on the node, without the product knowing it is under test. So
nothing in wizard/ is touched: this wrapper installs an audit hook (`sys.addaudithook`) and calls
`wizard.cli.main` in-process. A *point* is one operation a crash can fall before:

  file    `open` for writing (write/append/create/truncate: the journal's and every file's temp file,
          the lock file), `os.rename` (also raised by os.replace), `os.remove` (also os.unlink),
          `os.rmdir`, `os.mkdir`, `os.symlink`, `os.link`, and `os.chmod`/`os.chown`/`os.truncate`
          on a path (on a descriptor they only finish a temp file that the rename publishes)
  command `os.fork` (how `sh` starts systemctl, docker, kubectl), `os.posix_spawn`, `subprocess.Popen`
  socket  `socket.connect` (the etcd v2 API over urllib, kube API); `socket.sendto`/`socket.sendmsg`
          on a netlink socket
  etcd    a write RPC (Txn, Put, DeleteRange, LeaseGrant, LeaseRevoke) through gRPC
  link    an rtnetlink request that changes something (RTM_NEW*/DEL*/SET*) through pyroute2

The last two are not audit events: gRPC's channel lives in C (its C-core threads open the TCP
connection and never raise `socket.connect`), and pyroute2 0.9 sends netlink messages with
`socket.send`, which raises no audit event either (Python audits connect/sendto/sendmsg, not send).
So the wrapper wraps the libraries' own entry points (grpc `_UnaryUnaryMultiCallable._blocking`,
pyroute2 `AsyncCoreSocket.send`) as their modules are imported — libraries, not product code, and only
here.

The kill happens before the operation: `os.kill(os.getpid(), SIGKILL)` from inside the hook, so the
operation never starts. Points in a forked child (between `fork` and `exec`) are not counted.

Environment (read by this wrapper only):
  FW_KILL_AT          K: kill right before point K (unset or 0: run to the end)
  FW_KILL_COUNT_FILE  at exit, the number of points the run went through is written there
  FW_KILL_TRACE       one line per point, `K<TAB>kind<TAB>what`, and `KILL<TAB>K` before the kill
  FW_KILL_EVENTS      a log (the stand-ins' FW_STANDIN_LOG) that gets `wizard run COMMAND` at the start,
                      `wizard write PATH SHA` before every rename and `wizard remove PATH` before every
                      remove, so a check can tell which configuration each stand-in restart saw
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import os
import signal
import socket
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
               "os.truncate"}
COMMAND_EVENTS = {"os.fork", "os.forkpty", "os.posix_spawn", "subprocess.Popen", "os.system"}
SOCKET_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg"}
WATCHED = {"open"} | PATH_EVENTS | COMMAND_EVENTS | SOCKET_EVENTS
ETCD_WRITES = {"Txn", "Put", "DeleteRange", "LeaseGrant", "LeaseRevoke", "Compact"}
RTM = {16: "RTM_NEWLINK", 17: "RTM_DELLINK", 19: "RTM_SETLINK", 20: "RTM_NEWADDR", 21: "RTM_DELADDR",
       24: "RTM_NEWROUTE", 25: "RTM_DELROUTE", 28: "RTM_NEWNEIGH", 29: "RTM_DELNEIGH"}


class KillPoints:
    def __init__(self, kill_at: int, trace: str | None, events: str | None) -> None:
        self.pid = os.getpid()
        self.kill_at = kill_at
        self.count = 0
        self.active = True
        self.busy = threading.local()  # the hook's own reads (hashing a temp file) are not points
        self.lock = threading.Lock()
        # opened before the hook is installed; os.write raises no audit event
        self.trace = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if trace else None
        self.events = os.open(events, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if events else None

    # ------------------------------------------------------------ the points

    def point(self, kind: str, what: str, after: str = "") -> None:
        """One crash point: count it, kill before it when it is the K-th, else note it (and `after`)."""
        with self.lock:
            self.count += 1
            k = self.count
        if self.trace is not None:
            os.write(self.trace, f"{k}\t{kind}\t{what}\n".encode(errors="replace"))
        if k == self.kill_at:
            if self.trace is not None:
                os.write(self.trace, f"KILL\t{k}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)
        if after and self.events is not None:
            os.write(self.events, f"wizard {after}\n".encode(errors="replace"))

    def hook(self, event: str, args: tuple) -> None:
        if event not in WATCHED or not self.active or os.getpid() != self.pid or getattr(self.busy, "on", False):
            return
        self.busy.on = True
        try:
            self._event(event, args)
        except Exception as exc:  # an error here would surface as the product's own operation failing
            if self.trace is not None:
                os.write(self.trace, f"ERROR\t{event}: {exc!r}\n".encode(errors="replace"))
        finally:
            self.busy.on = False

    def _event(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return  # wrapping a descriptor someone already opened
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
            if writes:
                self.point("file", f"open {_text(path)} for writing")
            return
        if event in PATH_EVENTS:
            self._path_event(event, args)
            return
        if event in COMMAND_EVENTS:
            what = "fork" if event == "os.fork" else f"{event} {_text(args[0] if args else '')}"
            command = _command_in_flight()
            self.point("command", f"{what} ({command})" if command else what)
            return
        sock, address = args[0], args[1] if len(args) > 1 else None
        family = getattr(sock, "family", None)
        if event == "socket.connect" and family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            self.point("socket", f"connect {address}")
        elif event != "socket.connect" and family == socket.AF_NETLINK:
            self.point("link", f"{event} on netlink")

    def _path_event(self, event: str, args: tuple) -> None:
        name = event.removeprefix("os.")
        if event == "os.rename":
            src, dst, src_fd, dst_fd = args
            old, new = _at(src, src_fd), _at(dst, dst_fd)
            self.point("file", f"rename {old} -> {new}", f"write {new} {_digest(old)}")
        elif event == "os.remove":
            path = _at(args[0], args[1] if len(args) > 1 else None)
            self.point("file", f"remove {path}", f"remove {path}")
        elif event in ("os.chmod", "os.chown", "os.truncate"):
            if not isinstance(args[0], int):
                self.point("file", f"{name} {_at(args[0], args[-1])}")
        elif event in ("os.mkdir", "os.rmdir"):
            self.point("file", f"{name} {_at(args[0], args[-1])}")
        else:  # symlink, link
            self.point("file", f"{name} {_text(args[1])}")

    # ------------------------------------------------------------ library entry points

    def patch_grpc(self, module: object) -> None:
        cls = module._UnaryUnaryMultiCallable  # type: ignore[attr-defined]
        blocking = cls._blocking
        points = self

        def _blocking(callable_self: object, *args: object, **kwargs: object) -> object:
            method = getattr(callable_self, "_method", b"")
            method = method.decode() if isinstance(method, bytes) else str(method)
            if method.rsplit("/", 1)[-1] in ETCD_WRITES and os.getpid() == points.pid:
                points.point("etcd", f"gRPC {method}")
            return blocking(callable_self, *args, **kwargs)

        cls._blocking = _blocking

    def patch_pyroute2(self, module: object) -> None:
        cls = module.AsyncCoreSocket  # type: ignore[attr-defined]
        send = cls.send
        points = self

        def patched(sock: object, data: bytes, flags: int = 0) -> object:
            kinds = _rtm_changes(data) if getattr(sock, "family", 0) in (0, socket.NETLINK_ROUTE) else []
            if kinds and os.getpid() == points.pid:
                points.point("link", "netlink " + ",".join(kinds))
            return send(sock, data, flags)

        cls.send = patched

    def finish(self) -> None:
        self.active = False
        for fd in (self.trace, self.events):
            if fd is not None:
                os.close(fd)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a function on a module right after it is first imported (the wizard imports gRPC and
    pyroute2 lazily, after setting gRPC's environment; importing them here first would change that)."""

    def __init__(self, patches: dict[str, object]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.pop(name, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: object) -> None:
            exec_module(module)
            patch(module)  # type: ignore[operator]

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _text(value: object) -> str:
    return os.fsdecode(value) if isinstance(value, str | bytes | os.PathLike) else str(value)


def _at(path: object, dir_fd: object) -> str:
    """The absolute path an `*at()` call acts on (the audit event gives the name and the directory's fd)."""
    text = _text(path)
    if text.startswith("/"):
        return text
    base = os.getcwd()
    if isinstance(dir_fd, int) and dir_fd >= 0:
        with contextlib.suppress(OSError):
            base = os.readlink(f"/proc/self/fd/{dir_fd}")
    return os.path.join(base, text)


def _digest(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return "-"
    digest = hashlib.sha256()
    try:
        while chunk := os.read(fd, 1 << 16):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()[:16]


def _command_in_flight() -> str:
    """For the trace only: the argv of the command being started, read from the caller's frames (the
    node's `Commands.run(*argv)`), so a fork point can say `systemctl restart docker`."""
    try:
        frame = sys._getframe(3)
    except ValueError:
        return ""
    while frame is not None:
        if frame.f_code.co_name == "run" and "argv" in frame.f_code.co_varnames:
            argv = frame.f_locals.get("argv")
            if isinstance(argv, tuple | list) and argv and all(isinstance(a, str) for a in argv):
                return " ".join(argv)
        frame = frame.f_back
    return ""


def _rtm_changes(data: bytes) -> list[str]:
    """rtnetlink message types in `data` that change something (every 4th type from 16 is a GET)."""
    out, offset = [], 0
    while offset + 16 <= len(data):
        length = int.from_bytes(data[offset:offset + 4], sys.byteorder)
        kind = int.from_bytes(data[offset + 4:offset + 6], sys.byteorder)
        if kind >= 16 and (kind - 16) % 4 != 2:
            out.append(RTM.get(kind, f"RTM type {kind}"))
        if length < 16:
            break
        offset += (length + 3) & ~3
    return out


def main() -> None:
    kill_at = int(os.environ.get("FW_KILL_AT") or 0)
    count_file = os.environ.get("FW_KILL_COUNT_FILE")
    points = KillPoints(kill_at, os.environ.get("FW_KILL_TRACE"), os.environ.get("FW_KILL_EVENTS"))
    sys.meta_path.insert(0, _AfterImport({"grpc._channel": points.patch_grpc,
                                          "pyroute2.netlink.core": points.patch_pyroute2}))
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if points.events is not None:
        os.write(points.events, f"wizard run {' '.join(sys.argv[1:2])}\n".encode())
    sys.addaudithook(points.hook)

    from wizard.cli import main as cli_main

    try:
        code = cli_main(sys.argv[1:])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    points.finish()
    if count_file:
        Path(count_file).write_text(f"{points.count}\n")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # as the `flannel-wizard` command does: no interpreter teardown (gRPC's threads)
    os._exit(code)


if __name__ == "__main__":
    main()
