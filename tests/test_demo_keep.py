"""The demo removes its temporary root when it ends — quit, SIGTERM, or its terminal hanging up — and
`--keep` keeps it and says where and how to remove it. The real process on a real pseudo-terminal,
its TMPDIR a directory of the test's own, so what it leaves is seen exactly."""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
from pathlib import Path

from tests import lab
from tests.ptyterm import Terminal

READY = b"13 of 13 checks passed"


def start(tmp_path: Path, *args: str) -> tuple[Terminal, Path]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    term = Terminal(lab.wizard_argv("demo", "--speed", "50", *args), cwd=str(tmp_path),
                    env={**os.environ, "PYTHONPATH": str(lab.REPO), "TMPDIR": str(tmpdir)})
    term.read_until("DEMO — simulated node · scenario fresh-node".encode(), timeout=20)
    term.read_until(READY, timeout=20)
    roots = list(tmpdir.iterdir())
    assert len(roots) == 1 and roots[0].name.startswith("flannel-wizard-demo-fresh-node-"), roots
    return term, roots[0]


def drained(term: Terminal) -> str:
    """Everything the process wrote, up to the terminal's end."""
    while True:
        ready, _, _ = select.select([term.master], [], [], 2)
        if not ready:
            break
        try:
            chunk = os.read(term.master, 65536)
        except OSError:
            break
        if not chunk:
            break
        term.output += chunk
    return term.output.decode(errors="replace")


def test_quitting_the_demo_removes_its_files(tmp_path: Path) -> None:
    term, root = start(tmp_path)
    try:
        term.send(b"\x11")  # ctrl+q
        assert term.wait() == 0
        tail = drained(term)
    finally:
        term.close()
    assert not root.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert f"removed the demo's files ({root}); `flannel-wizard demo --keep` keeps them" in tail
    assert "demo files are under" not in tail and "Traceback" not in tail


def test_keep_keeps_them_and_says_where_and_how_to_remove_them(tmp_path: Path) -> None:
    term, root = start(tmp_path, "--keep")
    try:
        term.send(b"\x11")
        assert term.wait() == 0
        tail = " ".join(drained(term).split())  # the terminal may have wrapped the line
    finally:
        term.close()
    assert root.is_dir() and (root / "etc").is_dir()
    remove = f"rm -r {shlex.quote(str(root))}"
    assert (f"kept the demo's files (--keep) at {root}: the demo changed only those and an in-memory etcd, so "
            f"nothing on this machine needs undoing; remove them with `{remove}`") in tail
    subprocess.run(shlex.split(remove), check=True)  # the command it gives works
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_demo_ended_by_a_signal_removes_its_files_too(tmp_path: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        case = tmp_path / signum.name
        case.mkdir()
        term, root = start(case)
        try:
            os.kill(term.proc.pid, signum)
            assert term.wait() == -signum  # it still ends by the signal, as before
        finally:
            with contextlib.suppress(OSError):
                term.close()
        assert not root.exists(), signum.name
        assert list((case / "tmp").iterdir()) == []


def test_keep_and_a_signal_keeps_them(tmp_path: Path) -> None:
    term, root = start(tmp_path, "--keep")
    try:
        os.kill(term.proc.pid, signal.SIGTERM)
        assert term.wait() == -signal.SIGTERM
    finally:
        term.close()
    assert root.is_dir()
