"""Files under --root: confined reads and atomic writes that keep owner and mode.

Every node path is normalised (`/etc/./x` is `/etc/x`; `..` may not climb above `/`) and must stay
under the root once symbolic links are resolved, the way the kernel resolves them. A path that leads
out is refused, for reading as much as for writing, so a file outside the root is never read, shown
in a diff, or replaced.

Directories are opened one component at a time from the root with O_NOFOLLOW, after resolving: a
link swapped in between the check and the use makes the call fail instead of leading out. A file that
is a symbolic link to a file inside the root is written through (its target is replaced atomically;
the link stays); see `readlink` and `resolve` for what a caller records to undo that.

Only regular files are read, and only up to `MAX_READ` bytes: a FIFO would hang the read, a device or
a link to /dev/zero would never end. A directory where a file is expected reads as no file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from wizard.errors import WizardError

MAX_READ = 4 * 1024 * 1024  # far above any config file the wizard edits

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(name: str) -> str:
    """The temp file a write of `name` renames into place (in the same directory)."""
    return f".{name[:200]}.flannel-wizard-tmp"


def _remove_stale(tmp: str, dir_fd: int) -> None:
    """Remove the temp file a killed write left, if there is one (looked at first: usually there is none)."""
    try:
        os.stat(tmp, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)


class FileRefused(WizardError):
    """A node file the wizard will not read or write; the message names it and says what to do."""


class OutsideRoot(FileRefused):
    """The path, or a symbolic link on the way to it, leads out of --root."""


class NotAFile(FileRefused):
    """A FIFO, socket or device where a regular file is expected."""


class TooLarge(FileRefused):
    """Larger than any configuration file should be (`MAX_READ`)."""


class NotText(FileRefused):
    """Bytes that are not UTF-8 where the wizard must edit the text."""


class WriteFailed(FileRefused):
    """The file system refused a write: full, read-only, permissions, a directory in the way."""

    errno: int | None = None


@dataclass(frozen=True)
class FileState:
    # None: the file does not exist. Not in the repr (a traceback's locals): it may hold a secret.
    data: bytes | None = field(repr=False)
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None
    # the node path of the file actually read when the path is (or passes through) a symbolic link
    target: str | None = None


def decode_text(data: bytes, path: str) -> str:
    """`data` as UTF-8 text, for code that edits it and writes it back (a replaced byte would be lost).

    Raises NotText naming the first byte that is not UTF-8 as PATH:LINE:COL (1-based; the column counts
    characters). `Files.read_text` stays lenient: it is for display and for reading values.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
        raise NotText(
            f"{path}:{line}:{col}: byte 0x{data[start]:02x} is not UTF-8, and the wizard must edit this file",
            "convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or fix that byte by hand, then run again; "
            "nothing was changed",
        ) from None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


class Files:
    def __init__(self, root: str = "/") -> None:
        self.root = Path(root)

    # ------------------------------------------------------------ names and confinement

    def node_path(self, path: str) -> str:
        """`path` normalised to an absolute node path: `etc//x/./y` is `/etc/x/y`.

        `..` is resolved by name; one that climbs above `/` is refused rather than clamped, since the
        path then does not say what it seems to.
        """
        if "\0" in path:
            raise FileRefused(f"the path {path!r} contains a NUL byte", "no file name can; fix the path")
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise OutsideRoot(f"{path} climbs above / with '..'",
                                      f"the wizard reads and writes only under --root {self.root}; give the path without '..'")
                parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def _root_real(self) -> str:
        return os.path.realpath(self.root)

    @staticmethod
    def _inside(real: str, root_real: str) -> bool:
        return root_real == "/" or real == root_real or real.startswith(root_real + "/")

    def _resolve(self, node: str) -> str:
        """The host path a normalised node path leads to, links resolved; OutsideRoot if that leaves the root."""
        root_real = self._root_real()
        real = os.path.realpath(os.path.join(root_real, node.lstrip("/")))
        if not self._inside(real, root_real):
            raise self._outside(node, root_real)
        return real

    def _node_of(self, real: str, root_real: str) -> str:
        rel = os.path.relpath(real, root_real)
        return "/" if rel == "." else "/" + rel

    def _outside(self, node: str, root_real: str) -> OutsideRoot:
        """Name the first link on the way to `node` that leads out of the root."""
        parts = node.strip("/").split("/")
        culprit, link, lands = node, "", ""
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            lands = os.path.realpath(os.path.join(root_real, prefix.lstrip("/")))
            if not self._inside(lands, root_real):
                culprit = prefix
                parent = os.path.realpath(os.path.join(root_real, "/".join(parts[: i - 1])))
                try:
                    link = os.readlink(os.path.join(parent, parts[i - 1]))
                except OSError:
                    link = ""
                break
        what = f"{culprit} is a symbolic link to {link or lands}"
        if link and os.path.normpath(link) != lands:
            what += f" ({lands})"
        what += f", outside the root {self.root}"
        if culprit != node:
            what = f"{node}: {what}"
        return OutsideRoot(what, f"the wizard reads and writes only under --root {self.root}: replace the link with "
                                 "the real file or directory, or choose a path under the root; nothing was read or written")

    def path(self, path: str) -> Path:
        """The real location of a node path: `/etc/x` under root `/tmp/r` is `/tmp/r/etc/x`.

        Raises OutsideRoot when the path, its links resolved, leaves the root.
        """
        node = self.node_path(path)
        self._resolve(node)
        return self.root / node.lstrip("/")

    def resolve(self, path: str) -> str:
        """The node path `path` leads to once links are resolved (itself when no link is on the way)."""
        root_real = self._root_real()
        return self._node_of(self._resolve(self.node_path(path)), root_real)

    def _open_dir(self, real_dir: str, made: list[str] | None = None) -> int:
        """Open a resolved directory under the root one component at a time, following no link: a link
        swapped in after `_resolve` makes this fail (ELOOP) instead of leading out. With `made`, missing
        directories are made (0755) and their host paths appended to it."""
        root_real = self._root_real()
        rel = os.path.relpath(real_dir, root_real)
        fd = os.open(root_real, _DIR_FLAGS)
        here = root_real
        try:
            for part in [] if rel == "." else rel.split("/"):
                here = os.path.join(here, part)
                try:
                    child = self._open_child(fd, part)
                except FileNotFoundError:
                    if made is None:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    made.append(here)
                    child = self._open_child(fd, part)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _open_child(fd: int, part: str) -> int:
        """Open the directory `part` in `fd`, not following a link. A link there (swapped in after the
        path was resolved) raises ELOOP, whichever of ELOOP and ENOTDIR the kernel gave."""
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except NotADirectoryError:
            try:
                is_link = stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from None
            raise

    # ------------------------------------------------------------ reading

    def _changed(self, node: str) -> FileRefused:
        return FileRefused(f"{node} is a symbolic link that loops, or it changed while the wizard read it",
                           "look at it (ls -l) and run again")

    def _open_file(self, path: str, limit: int) -> tuple[int, os.stat_result, str] | None:
        """An open descriptor on a confined regular file, its stat and the node path read; None when absent."""
        node = self.node_path(path)
        root_real = self._root_real()
        real = self._resolve(node)
        if real == root_real:
            return None  # the root is a directory
        parent, name = os.path.split(real)
        try:
            dir_fd = self._open_dir(parent)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._changed(node) from None
            raise
        try:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISDIR(st.st_mode):
                return None  # a directory where a file is expected holds no file either
            if stat.S_ISLNK(st.st_mode):
                raise self._changed(node)
            self._check_type(node, real, st, limit)
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise self._changed(node) from None
                raise
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(opened.st_mode):
                os.close(fd)
                raise self._changed(node)
            return fd, opened, self._node_of(real, root_real)
        finally:
            os.close(dir_fd)

    def _where(self, node: str) -> str:
        """Where a node path is on this machine, for messages: ` (/tmp/r/etc/x)` under a --root."""
        return "" if str(self.root) == "/" else f" ({self.root / node.lstrip('/')})"

    def _not_a_file(self, node: str, target: str, mode: int, verb: str) -> NotAFile:
        what = f"{node}{self._where(node)} is {_kind(mode)}, not a regular file"
        if target != node:
            what = f"{node}{self._where(node)} leads to {target}, {_kind(mode)}, not a regular file"
        return NotAFile(what, f"the wizard {verb}s only regular files: put the file itself at {node}, or remove "
                              f"what is there to start from none; nothing was {'written' if verb == 'write' else 'read'}")

    def _check_type(self, node: str, real: str, st: os.stat_result, limit: int) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise self._not_a_file(node, self._node_of(real, self._root_real()), st.st_mode, "read")
        if st.st_size > limit:
            raise TooLarge(f"{node}{self._where(node)} is {st.st_size} bytes, more than the {limit // 1024} KiB "
                           "a configuration file may be", f"check that {node} is the right file; nothing was read")

    def _read_fd(self, fd: int, node: str, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{node}{self._where(node)} is more than the {limit // 1024} KiB a configuration "
                                   "file may be", f"check that {node} is the right file; nothing was read")
        finally:
            os.close(fd)
        return b"".join(chunks)

    def read(self, path: str, limit: int = MAX_READ) -> bytes | None:
        """The bytes of a regular file under the root; None when there is none (or a directory is there)."""
        found = self._open_file(path, limit)
        if found is None:
            return None
        return self._read_fd(found[0], self.node_path(path), limit)

    def read_text(self, path: str) -> str | None:
        """For display and for reading values: a byte that is not UTF-8 shows as U+FFFD. Code that
        edits the text and writes it back uses `decode_text` on the bytes instead."""
        data = self.read(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def exists(self, path: str) -> bool:
        return os.path.exists(self._resolve(self.node_path(path)))

    def state(self, path: str, limit: int = MAX_READ) -> FileState:
        found = self._open_file(path, limit)
        if found is None:
            return FileState(None)
        fd, st, target = found
        node = self.node_path(path)
        data = self._read_fd(fd, node, limit)
        return FileState(data, st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns,
                         target if target != node else None)

    def list(self, path: str) -> list[str]:
        node = self.node_path(path)
        real = self._resolve(node)
        try:
            dir_fd = self._open_dir(real)
        except (FileNotFoundError, NotADirectoryError):
            return []
        try:
            names = os.listdir(dir_fd)
            found = []
            for name in names:
                try:
                    if stat.S_ISREG(os.stat(name, dir_fd=dir_fd).st_mode):
                        found.append(name)
                except OSError:
                    continue
        finally:
            os.close(dir_fd)
        return sorted(str(Path(node) / name) for name in found)

    def readlink(self, path: str) -> str | None:
        """What the symbolic link at `path` says (its last component only), None when it is not a link."""
        node = self.node_path(path)
        if node == "/":
            return None
        parent_node, name = node.rsplit("/", 1)
        try:
            dir_fd = self._open_dir(self._resolve(parent_node or "/"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.readlink(name, dir_fd=dir_fd)
        except OSError:  # EINVAL: not a link; ENOENT: nothing there
            return None
        finally:
            os.close(dir_fd)

    def mtime_ns(self, path: str) -> int | None:
        try:
            return os.stat(self._resolve(self.node_path(path))).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None

    # ------------------------------------------------------------ writing

    def _write_error(self, node: str, real: str, exc: OSError, verb: str = "write") -> WriteFailed:
        where = "" if str(self.root) == "/" else f" ({real})"
        code = exc.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            what, fix = "no space left on its file system", f"free some space (`df -h {os.path.dirname(real)}`) and run again"
        elif code == errno.EROFS:
            what, fix = "its file system is read-only", "remount it read-write (or choose another --root) and run again"
        elif code in (errno.EACCES, errno.EPERM):
            what, fix = "permission denied", ("run as root; as root, look for the immutable flag (`lsattr`) "
                                             "or a security policy (SELinux, AppArmor)")
        elif code == errno.EISDIR:
            what, fix = "a directory is in the way", "move the directory away, or choose another path"
        elif code == errno.ENOTDIR:
            what, fix = "a part of its directory is a file, not a directory", "fix the path, or move that file away"
        elif code == errno.ELOOP:
            what, fix = "a symbolic link appeared on its way while it was written", "look at it (ls -l) and run again"
        else:
            what, fix = exc.strerror or str(exc), "fix the cause and run again"
        error = WriteFailed(f"could not {verb} {node}{where}: {what}", f"{fix}; {node} was left as it was")
        error.errno = code  # the journal frees its reserve on ENOSPC and tries once more
        return error

    def write(
        self, path: str, data: bytes, mode: int | None = None, owner: tuple[int, int] | None = None
    ) -> list[str]:
        """Write atomically: temp file beside the target, fsync, rename, fsync the directory.

        A symbolic link to a file inside the root is written through: its target is replaced and the
        link stays. An existing file keeps its mode and owner unless `mode` is given; a new one gets 0644.
        Returns the directories it had to create (node paths, outermost first), so undo can remove them.
        A failure (disk full, read-only, permissions) raises WriteFailed and leaves no temp file and
        no directory it made.
        """
        node = self.node_path(path)
        root_real = self._root_real()
        real = self._resolve(node)
        if real == root_real:
            raise WriteFailed(f"could not write {node}: it is the root directory", "give the path of a file")
        parent, name = os.path.split(real)
        made: list[str] = []
        done = False
        dir_fd = -1
        tmp: str | None = None
        try:
            if not os.path.isdir(root_real):
                raise WriteFailed(f"the root {self.root} does not exist", "create it, or pass the right --root")
            dir_fd = self._open_dir(parent, made)
            try:
                st: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISLNK(st.st_mode):
                    raise self._changed(node)
                if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                    raise self._not_a_file(node, self._node_of(real, root_real), st.st_mode, "write")
            keep_mode = st.st_mode & 0o7777 if st is not None else 0o644
            keep_owner = (st.st_uid, st.st_gid) if st is not None else None
            # one temp name per file, known in advance: one that a killed run left behind (it may have died
            # between creating it and the rename) is removed by the next write or removal of the same file
            tmp = temp_name(name)
            _remove_stale(tmp, dir_fd)
            fd = os.open(tmp, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
            try:
                os.fchmod(fd, mode if mode is not None else keep_mode)
                wanted_owner = owner or keep_owner
                if wanted_owner is not None and os.geteuid() == 0:
                    os.fchown(fd, *wanted_owner)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            tmp = None
            os.fsync(dir_fd)
            done = True
        except OSError as exc:
            raise self._write_error(node, real, exc) from None
        finally:
            if dir_fd >= 0:
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dir_fd)
                os.close(dir_fd)
            if not done:
                for made_dir in reversed(made):
                    try:
                        os.rmdir(made_dir)
                    except OSError:
                        break
        return [self._node_of(d, root_real) for d in made]

    def symlink(self, path: str, link: str) -> None:
        """Make `path` a symbolic link saying `link` (replacing what is there, atomically); undo uses it
        to put back a link. Refused when the link would lead out of the root."""
        node = self.node_path(path)
        if node == "/":
            raise WriteFailed("could not make the root a symbolic link", "give the path of a file")
        root_real = self._root_real()
        parent_node, name = node.rsplit("/", 1)
        parent = self._resolve(parent_node or "/")
        aimed = os.path.realpath(os.path.join(parent, link))
        if not self._inside(aimed, root_real):
            raise OutsideRoot(f"{node} would be a symbolic link to {link}, outside the root {self.root}",
                              "make the link by hand if it is really wanted; nothing was written")
        try:
            dir_fd = self._open_dir(parent)
        except OSError as exc:
            raise self._write_error(node, os.path.join(parent, name), exc) from None
        tmp = temp_name(name)
        try:
            _remove_stale(tmp, dir_fd)
            os.symlink(link, tmp, dir_fd=dir_fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            tmp = ""
            os.fsync(dir_fd)
        except OSError as exc:
            raise self._write_error(node, os.path.join(parent, name), exc) from None
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
            os.close(dir_fd)

    def _parent_fd(self, node: str) -> tuple[int, str] | None:
        """The open parent directory of a node path (links on the way resolved, confined) and the last name."""
        if node == "/":
            return None
        parent_node, name = node.rsplit("/", 1)
        try:
            return self._open_dir(self._resolve(parent_node or "/")), name
        except (FileNotFoundError, NotADirectoryError):
            return None

    def remove_empty_dirs(self, dirs: list[str]) -> None:
        for node_dir in reversed(dirs):
            try:
                found = self._parent_fd(self.node_path(node_dir))
                if found is None:
                    break
                dir_fd, name = found
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                finally:
                    os.close(dir_fd)
            except (OSError, WizardError):
                break

    def remove(self, path: str) -> None:
        """Remove the file at `path` (a link there is removed, not its target); nothing there is fine."""
        node = self.node_path(path)
        try:
            found = self._parent_fd(node)
            if found is None:
                return
            dir_fd, name = found
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                _remove_stale(temp_name(name), dir_fd)  # and a temp file a killed write left beside it
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise self._write_error(node, str(self.root / node.lstrip("/")), exc, "remove") from None
