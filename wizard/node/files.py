"""Files under --root: atomic writes that keep owner and mode, and plain reads."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FileState:
    # None: the file does not exist. Not in the repr (a traceback's locals): it may hold a secret.
    data: bytes | None = field(repr=False)
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None


class Files:
    def __init__(self, root: str = "/") -> None:
        self.root = Path(root)

    def path(self, path: str) -> Path:
        """The real location of a node path: `/etc/x` under root `/tmp/r` is `/tmp/r/etc/x`."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> bytes | None:
        try:
            return self.path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None  # a directory where a file is expected holds no file either

    def read_text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        return self.path(path).exists()

    def state(self, path: str) -> FileState:
        real = self.path(path)
        try:
            st = real.stat()
            return FileState(real.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return FileState(None)

    def list(self, path: str) -> list[str]:
        real = self.path(path)
        if not real.is_dir():
            return []
        return sorted(str(Path(path) / p.name) for p in real.iterdir() if p.is_file())

    def write(
        self, path: str, data: bytes, mode: int | None = None, owner: tuple[int, int] | None = None
    ) -> list[str]:
        """Write atomically: temp file beside the target, fsync, rename, fsync the directory.

        An existing file keeps its mode and owner unless `mode` is given; a new one gets 0644.
        Returns the directories it had to create (node paths, outermost first), so undo can remove them.
        """
        real = self.path(path)
        created = self._make_parents(path)
        try:
            st = real.stat()
            keep_mode, keep_owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
        except FileNotFoundError:
            keep_mode, keep_owner = 0o644, None
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=real.parent)
        try:
            os.fchmod(fd, mode if mode is not None else keep_mode)
            wanted_owner = owner or keep_owner
            if wanted_owner is not None and os.geteuid() == 0:
                os.fchown(fd, *wanted_owner)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, real)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return created

    def _make_parents(self, path: str) -> list[str]:
        missing: list[str] = []
        parent = Path(path).parent
        while not self.path(str(parent)).exists():
            if parent == parent.parent:
                raise FileNotFoundError(f"the root {self.root} does not exist")
            missing.append(str(parent))
            parent = parent.parent
        for node_dir in reversed(missing):
            self.path(node_dir).mkdir(mode=0o755)
        return list(reversed(missing))

    def remove_empty_dirs(self, dirs: list[str]) -> None:
        for node_dir in reversed(dirs):
            try:
                self.path(node_dir).rmdir()
            except OSError:
                break

    def remove(self, path: str) -> None:
        self.path(path).unlink(missing_ok=True)

    def mtime_ns(self, path: str) -> int | None:
        try:
            return self.path(path).stat().st_mtime_ns
        except FileNotFoundError:
            return None
