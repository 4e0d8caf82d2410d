"""Files stay under --root (issue 9, points 3 and 5, the node side): links that lead out are refused for
reading and writing, a link to a file inside the root is written through and comes back as a link after
undo, FIFOs, devices and huge files are refused before they are read, a byte that is not UTF-8 is named
by its line and column, and a full or read-only file system is a message, with no temp file left.

Real files, real links, a real FIFO and device node, a real tiny tmpfs (the tests run as root)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from tests.nodelab import IGNORE, SEED_ENV, LabNode
from wizard.changes import ApplyContext, FileWrite
from wizard.journal import Journal
from wizard.node import Node
from wizard.node.files import (
    Files,
    NotAFile,
    NotText,
    OutsideRoot,
    WriteFailed,
    decode_text,
)

MARKER = "SECRET-OUTSIDE-THE-ROOT"


def apply_change(node: Node, journal: Journal, change: FileWrite) -> dict:
    """Apply one change the way the runner does: journal entry first, backups and record through it."""
    entry = journal.begin(change, "flanneld")
    ctx = ApplyContext(node=node, backup=lambda data: journal.backup(entry, data),
                       prepare=lambda record: journal.finish(entry, "applying", record),
                       interrupted=lambda: False, store=lambda: pytest.fail("no etcd here"), entry_id=entry["id"])
    applied = change.apply(ctx)
    journal.finish(entry, "applied", applied.record)
    return applied.record


def undo(node: Node, journal: Journal) -> list[str]:
    from wizard.undo import undo_all

    events: list = []
    failures = undo_all(node, journal, events.append)
    assert failures == 0, [(e.message, e.detail) for e in events]
    return [e.message for e in events]


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# ---------------------------------------------------------------- links that lead out


def test_a_symlinked_directory_out_of_the_root_is_refused_for_writes(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "etc").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "etc/sysconfig").symlink_to(elsewhere)
    files = Files(str(root))
    with pytest.raises(OutsideRoot) as refused:
        files.write("/etc/sysconfig/flanneld", b"FLANNEL_OPTIONS=\"\"\n")
    message = str(refused.value)
    assert "/etc/sysconfig is a symbolic link to" in message and str(elsewhere) in message
    assert "outside the root" in message and "nothing was read or written" in message
    assert listing(elsewhere) == []  # nothing written there, no temp file either
    with pytest.raises(OutsideRoot):
        files.path("/etc/sysconfig/flanneld")
    with pytest.raises(OutsideRoot):
        files.write("/etc/sysconfig/new/dir/file", b"x")  # nor any directory made out there
    assert listing(elsewhere) == []


def test_dot_dot_and_nul_never_lead_out(tmp_path: Path) -> None:
    files = Files(str(tmp_path))
    assert files.node_path("etc//sysconfig/./x/../flanneld") == "/etc/sysconfig/flanneld"
    with pytest.raises(OutsideRoot, match="climbs above /"):
        files.write("/../../../../tmp/x", b"x")
    with pytest.raises(OutsideRoot):
        files.read("/etc/../../etc/shadow")
    with pytest.raises(Exception, match="NUL byte"):
        files.read("/etc/fl\0anneld")
    assert listing(tmp_path) == []


def test_a_directory_swapped_for_a_link_after_the_check_is_not_followed(tmp_path: Path) -> None:
    """The race the O_NOFOLLOW walk closes: resolved while it was a directory, a link by the time it is opened."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "etc/sysconfig").mkdir(parents=True)
    elsewhere.mkdir()

    class Racing(Files):
        def _resolve(self, node: str) -> str:
            real = super()._resolve(node)
            if (root / "etc/sysconfig").is_dir() and not (root / "etc/sysconfig").is_symlink():
                (root / "etc/sysconfig").rename(root / "etc/moved")
                (root / "etc/sysconfig").symlink_to(elsewhere)
            return real

    with pytest.raises(WriteFailed, match="symbolic link appeared"):
        Racing(str(root)).write("/etc/sysconfig/flanneld", b"x")
    assert listing(elsewhere) == []


def test_a_link_to_a_file_out_of_the_root_is_refused_at_inspect_and_never_shown(node: LabNode, tmp_path: Path) -> None:
    outside = tmp_path / "outside-flanneld"
    outside.write_text(SEED_ENV + f"# {MARKER}\n")
    target = node.root / "etc/sysconfig/flanneld"
    target.unlink()
    target.symlink_to(outside)
    result = run_wizard("plan", "config.example.yaml", "--root", str(node.root), "--skip", "smoke", env=node.env,
                        netns=node.ns)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "/etc/sysconfig/flanneld is a symbolic link to" in out and "outside the root" in out
    assert MARKER not in out and "Traceback" not in out
    applied = run_wizard("apply", "config.example.yaml", "--root", str(node.root), "--yes", "--ignore-preflight-errors",
                         IGNORE, "--skip", "smoke", env=node.env, netns=node.ns)
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert MARKER not in applied.stdout + applied.stderr
    assert outside.read_text() == SEED_ENV + f"# {MARKER}\n"  # untouched
    assert target.is_symlink() and os.readlink(target) == str(outside)


# ---------------------------------------------------------------- links inside the root


def test_a_link_inside_the_root_is_written_through_and_undo_keeps_the_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/sysconfig").mkdir(parents=True)
    real = root / "etc/flanneld.conf"
    real.write_bytes(SEED_ENV.encode())
    real.chmod(0o640)
    link = root / "etc/sysconfig/flanneld"
    link.symlink_to("../flanneld.conf")
    node = Node(str(root))
    journal = Journal(node.files, "/var/lib/flannel-wizard", node.identity())

    old = node.files.state("/etc/sysconfig/flanneld")
    assert old.data == SEED_ENV.encode() and old.mode == 0o640 and old.target == "/etc/flanneld.conf"
    change = FileWrite("/etc/sysconfig/flanneld", b"FLANNEL_OPTIONS=\"-ip-masq\"\n", old)
    assert "leads to /etc/flanneld.conf" in change.detail()
    record = apply_change(node, journal, change)
    assert record["link"] == "../flanneld.conf" and record["target"] == "/etc/flanneld.conf"
    assert link.is_symlink() and os.readlink(link) == "../flanneld.conf"  # still the operator's link
    assert real.read_bytes() == b"FLANNEL_OPTIONS=\"-ip-masq\"\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the target keeps its mode
    assert FileWrite.record_problem(record) == ""  # the journal's check of what undo will act on

    messages = undo(node, Journal(node.files, "/var/lib/flannel-wizard", node.identity()))
    assert any("restored /etc/flanneld.conf, the file /etc/sysconfig/flanneld links to (the link stays)" in m
               for m in messages), messages
    assert link.is_symlink() and os.readlink(link) == "../flanneld.conf"
    assert real.read_bytes() == SEED_ENV.encode() and stat.S_IMODE(real.stat().st_mode) == 0o640


def test_undo_puts_back_a_link_that_was_replaced_by_a_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/docker").mkdir(parents=True)
    real = root / "etc/docker/daemon.real.json"
    real.write_text("{}\n")
    link = root / "etc/docker/daemon.json"
    link.symlink_to("daemon.real.json")
    node = Node(str(root))
    journal = Journal(node.files, "/state", node.identity())
    apply_change(node, journal, FileWrite("/etc/docker/daemon.json", b'{"bip": "10.1.0.1/24"}\n',
                                          node.files.state("/etc/docker/daemon.json")))
    link.unlink()  # someone (an older wizard, an editor) made it a plain file meanwhile
    link.write_text('{"bip": "10.1.0.1/24"}\n')
    undo(node, Journal(node.files, "/state", node.identity()))
    assert link.is_symlink() and os.readlink(link) == "daemon.real.json"
    assert real.read_text() == "{}\n"


def test_a_dangling_link_inside_the_root_creates_its_target_and_undo_removes_only_that(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    link = root / "run/docker_opts.env"
    link.symlink_to("flannel/docker.env")
    node = Node(str(root))
    journal = Journal(node.files, "/state", node.identity())
    record = apply_change(node, journal, FileWrite("/run/docker_opts.env", b"DOCKER_OPTS=\n",
                                                   node.files.state("/run/docker_opts.env")))
    assert record["existed"] is False and record["created_dirs"] == ["/run/flannel"]
    assert (root / "run/flannel/docker.env").read_text() == "DOCKER_OPTS=\n"
    undo(node, Journal(node.files, "/state", node.identity()))
    assert link.is_symlink() and os.readlink(link) == "flannel/docker.env"
    assert not (root / "run/flannel").exists()


def test_lab_apply_then_undo_through_a_linked_env_file(node: LabNode) -> None:
    env = node.root / "etc/sysconfig/flanneld"
    real = node.root / "etc/flanneld.env"
    env.rename(real)
    env.symlink_to("../flanneld.env")
    applied = run_wizard("apply", "config.example.yaml", "--root", str(node.root), "--yes", "--ignore-preflight-errors",
                         IGNORE, "--skip", "smoke", env=node.env, netns=node.ns)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert env.is_symlink() and 'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"' in real.read_text()
    undone = run_wizard("undo", "--root", str(node.root), env=node.env, netns=node.ns)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert env.is_symlink() and os.readlink(env) == "../flanneld.env"
    assert real.read_text() == SEED_ENV


# ---------------------------------------------------------------- what is not a regular file


def test_a_fifo_a_device_and_a_huge_file_are_refused_without_reading(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc/fifo")
    os.mknod(tmp_path / "etc/zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    with open(tmp_path / "etc/huge", "wb") as out:
        out.truncate(5 * 1024 * 1024)
    (tmp_path / "etc/zero-link").symlink_to("/dev/zero")
    (tmp_path / "etc/dir").mkdir()
    # in a child with a timeout: a FIFO opened for reading would block forever, /dev/zero never ends
    code = (
        "import sys\n"
        "from wizard.node.files import Files, FileRefused\n"
        f"files, out = Files({str(tmp_path)!r}), []\n"
        "for path in ('/etc/fifo', '/etc/zero', '/etc/huge', '/etc/zero-link'):\n"
        "    for read in (files.read, files.state):\n"
        "        try:\n"
        "            read(path)\n"
        "            out.append(f'{path}: read')\n"
        "        except FileRefused as exc:\n"
        "            out.append(f'{type(exc).__name__}: {exc}')\n"
        "try:\n"
        f"    Files('/').read({str(tmp_path / 'etc/zero-link')!r})\n"
        "except FileRefused as exc:\n"
        "    out.append(f'{type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10, cwd=lab.REPO)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 9, result.stdout + result.stderr
    assert lines[0].startswith("NotAFile: /etc/fifo") and "a named pipe (FIFO), not a regular file" in lines[0]
    assert lines[2].startswith("NotAFile: /etc/zero") and "a character device" in lines[2]
    assert lines[4].startswith("TooLarge: /etc/huge") and "5242880 bytes" in lines[4]
    assert lines[6].startswith("OutsideRoot: /etc/zero-link is a symbolic link to /dev/zero")
    # with / as the root /dev/zero is inside it: refused as a device, never read
    assert lines[8].startswith("NotAFile:") and "leads to /dev/zero, a character device" in lines[8]
    files = Files(str(tmp_path))
    assert files.read("/etc/dir") is None and files.state("/etc/dir").data is None  # no file, as before
    assert files.read("/etc/fifo/x") is None
    with pytest.raises(NotAFile):
        files.write("/etc/fifo", b"x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "etc/fifo").st_mode)


def test_a_fifo_daemon_json_fails_plan_quickly(node: LabNode) -> None:
    daemon = node.root / "etc/docker/daemon.json"
    daemon.unlink()
    os.mkfifo(daemon)
    result = run_wizard("plan", "config.example.yaml", "--root", str(node.root), "--skip", "smoke", env=node.env,
                        netns=node.ns, timeout=30)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "/etc/docker/daemon.json" in out and "a named pipe (FIFO), not a regular file" in out


def test_a_daemon_json_linked_to_dev_zero_fails_plan_quickly(node: LabNode) -> None:
    daemon = node.root / "etc/docker/daemon.json"
    daemon.unlink()
    daemon.symlink_to("/dev/zero")
    result = run_wizard("plan", "config.example.yaml", "--root", str(node.root), "--skip", "smoke", env=node.env,
                        netns=node.ns, timeout=30)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "/etc/docker/daemon.json is a symbolic link to /dev/zero, outside the root" in out


# ---------------------------------------------------------------- text that is not UTF-8


def test_decode_text_names_line_and_column() -> None:
    assert decode_text("é\n".encode(), "/x") == "é\n"
    with pytest.raises(NotText) as bad:
        decode_text(b"# caf\xc3\xa9\nFLANNEL_OPTIONS=\"-iface=\xe9th0\"\n", "/etc/sysconfig/flanneld")
    assert bad.value.what.startswith("/etc/sysconfig/flanneld:2:25: byte 0xe9 is not UTF-8")
    assert "iconv" in bad.value.fix


def test_a_latin1_byte_in_the_flanneld_env_file_is_named_by_plan(node: LabNode) -> None:
    env = node.root / "etc/sysconfig/flanneld"
    env.write_bytes(SEED_ENV.encode().replace(b"# Any additional", b"# Caf\xe9: any additional"))
    before = env.read_bytes()
    result = run_wizard("plan", "config.example.yaml", "--root", str(node.root), "--skip", "smoke", env=node.env,
                        netns=node.ns)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out, out
    assert "/etc/sysconfig/flanneld:4:6: byte 0xe9 is not UTF-8" in out
    applied = run_wizard("apply", "config.example.yaml", "--root", str(node.root), "--yes", "--ignore-preflight-errors",
                         IGNORE, "--skip", "smoke", env=node.env, netns=node.ns)
    assert applied.returncode == 1 and "Traceback" not in applied.stdout + applied.stderr
    assert "/etc/sysconfig/flanneld:4:6" in applied.stdout + applied.stderr
    assert env.read_bytes() == before


# ---------------------------------------------------------------- full and read-only file systems


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_is_a_message_and_leaves_no_temp_file(tiny_tmpfs: Path) -> None:
    (tiny_tmpfs / "etc").mkdir()
    (tiny_tmpfs / "etc/flanneld").write_text("OLD=1\n")
    files = Files(str(tiny_tmpfs))
    with pytest.raises(WriteFailed) as full:
        files.write("/etc/flanneld", b"x" * 200_000)
    assert "could not write /etc/flanneld" in full.value.what and "no space left" in full.value.what
    assert "df -h" in full.value.fix and "/etc/flanneld was left as it was" in full.value.fix
    assert (tiny_tmpfs / "etc/flanneld").read_text() == "OLD=1\n"
    assert listing(tiny_tmpfs) == ["etc", "etc/flanneld"]  # no temp file
    with pytest.raises(WriteFailed, match="no space left"):
        files.write("/new/dirs/file", b"x" * 200_000)
    assert listing(tiny_tmpfs) == ["etc", "etc/flanneld"]  # nor the directories it made for it


def test_disk_full_through_a_change_leaves_the_file_as_it_was(tiny_tmpfs: Path, tmp_path: Path) -> None:
    (tiny_tmpfs / "etc").mkdir()
    (tiny_tmpfs / "etc/flanneld").write_text("OLD=1\n")
    node = Node(str(tiny_tmpfs))
    (tmp_path / "state-root").mkdir()
    journal = Journal(Files(str(tmp_path / "state-root")), "/state", node.identity())  # the journal has room
    change = FileWrite("/etc/flanneld", b"y" * 200_000, node.files.state("/etc/flanneld"))
    with pytest.raises(WriteFailed, match="no space left on its file system"):
        apply_change(node, journal, change)
    assert (tiny_tmpfs / "etc/flanneld").read_text() == "OLD=1\n"
    assert listing(tiny_tmpfs) == ["etc", "etc/flanneld"]


def test_a_read_only_file_system_is_a_message(tiny_tmpfs: Path) -> None:
    (tiny_tmpfs / "etc").mkdir()
    (tiny_tmpfs / "etc/flanneld").write_text("OLD=1\n")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    files = Files(str(tiny_tmpfs))
    with pytest.raises(WriteFailed) as ro:
        files.write("/etc/flanneld", b"NEW=1\n")
    assert "its file system is read-only" in ro.value.what and "remount it read-write" in ro.value.fix
    assert files.read("/etc/flanneld") == b"OLD=1\n"
