"""Reading the files the wizard is handed (answers, secrets, a saved iptables dump) or standard input:
a regular file of bounded size, never a FIFO, device or endless pipe. No pydantic here, so a command
that only reads a file (explain-service --from) does not pay for the answers model."""

from __future__ import annotations

import os


class Refused(Exception):
    """A file not read: `what` is wrong with it, `fix` says what to do."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def _kind(mode: int) -> str | None:
    import stat

    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


def read_regular(path: str, limit: int, what: str = "an answers file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The type and size are checked with stat
    before the file is opened, so a directory, FIFO or device is refused without reading (a FIFO would
    block the open, /dev/zero never ends); the open is non-blocking and checked again, for a file
    swapped in between."""
    fix = f"give the path of {what}"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise Refused("no such file", f"{fix}{', e.g. config.example.yaml' if what == 'an answers file' else ''}") from None
    except NotADirectoryError:
        raise Refused("no such file: a part of the path is not a directory", fix) from None
    except PermissionError:
        raise Refused("permission denied", "check the permissions of the file and of its directories") from None
    except (OSError, ValueError) as exc:
        raise Refused(f"cannot read it: {getattr(exc, 'strerror', None) or exc}", fix) from None
    kind = _kind(info.st_mode)
    if kind:
        raise Refused(f"is {kind}, not {what}", fix)
    if info.st_size > limit:
        raise Refused(f"is {_size(info.st_size)}, more than {what} can be ({_size(limit)} at most)", fix)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except PermissionError:
        raise Refused("permission denied", "check the permissions of the file and of its directories") from None
    except OSError as exc:
        raise Refused(f"cannot read it: {exc.strerror or exc}", fix) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind:
            raise Refused(f"is {kind}, not {what}", fix)
        data = _read_upto(fd, limit)
    except OSError as exc:
        raise Refused(f"cannot read it: {exc.strerror or exc}", fix) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Refused(f"is more than {what} can be ({_size(limit)} at most)", fix)
    return data


STDIN = "-"  # the path that means standard input, as for cat and kubectl -f
STDIN_NAME = "<stdin>"  # how messages name it: `<stdin>:3:5: ...`


def source_name(path: str) -> str:
    """How messages name what `path` reads: the path, or <stdin> for `-`."""
    return STDIN_NAME if path == STDIN else path


def read_stdin(limit: int, what: str = "an answers file") -> bytes:
    """Standard input, at most `limit` bytes (the limit of a file of its kind): read to its end, but never
    more than `limit` + 1 bytes, so `< /dev/zero` or an endless pipe is refused instead of filling memory."""
    import stat

    fix = f"pipe in {what} only, or give its path instead of -"
    try:
        info = os.fstat(0)
    except OSError:
        raise Refused("standard input is closed", fix) from None
    if stat.S_ISDIR(info.st_mode):
        raise Refused(f"standard input is a directory, not {what}", fix)
    if stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise Refused(f"standard input is {_size(info.st_size)}, more than {what} can be ({_size(limit)} at most)", fix)
    try:
        data = _read_upto(0, limit)
    except OSError as exc:
        raise Refused(f"cannot read standard input: {exc.strerror or exc}", fix) from None
    if len(data) > limit:
        raise Refused(f"standard input holds more than {what} can be ({_size(limit)} at most)", fix)
    return data


def _read_upto(fd: int, limit: int) -> bytes:
    """`fd` to its end, but never more than `limit` + 1 bytes: one byte over says it is too big, without
    reading an endless pipe or /dev/zero into memory."""
    import select

    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        try:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
        except BlockingIOError:  # a non-blocking descriptor inherited from the caller: wait for data
            select.select([fd], [], [])
            continue
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_input(path: str, limit: int, what: str = "an answers file") -> bytes:
    """The bytes of a regular file (`read_regular`), or of standard input when `path` is `-`; the same limit."""
    return read_stdin(limit, what) if path == STDIN else read_regular(path, limit, what)
