"""The wizard in a real terminal (tmux), at 80x24 and 100x30: what an operator sees for each class of
problem issue 10 names — a problem no field can fix, a stale verdict, a failure and its way forward."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import lab


class Term:
    def __init__(self, name: str, socket: str) -> None:
        self.name = name
        self.tmux = ["tmux", "-S", socket]  # a server of its own: the user's tmux is not touched

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                               check=True, timeout=10).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def wait(self, check: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.05)


@contextmanager
def terminal(argv: list[str], size: tuple[int, int]) -> Iterator[Term]:
    import tempfile

    name = f"fwtest-{uuid.uuid4().hex[:8]}"
    socket = os.path.join(tempfile.gettempdir(), f"{name}.tmux")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    command = " ".join(f"'{a}'" for a in argv)
    subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]),
                    f"cd '{lab.REPO}' && PYTHONPATH='{lab.REPO}' {command}"], check=True, env=env, timeout=10)
    try:
        yield Term(name, socket)
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
def test_an_unknown_key_says_how_to_get_past_it(tmp_path: Path, size: tuple[int, int]) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("version: 1\netcd:\n  endponts: ['http://127.0.0.1:2379']\n")
    with terminal(lab.wizard_argv("demo", "--answers", str(answers), "--speed", "50"), size) as term:
        term.wait(lambda s: "Welcome" in s and "checks passed" in s, "Welcome")
        assert "✗ etcd" in term.screen()  # the sidebar marks the page the problem is on
        term.keys("C-n")
        text = term.wait(lambda s: "unknown key" in s, "the etcd page's problem")
        assert "ctrl+d" in text
        term.keys("C-d")
        text = term.wait(lambda s: "unknown key" not in s, "the key dropped")
        assert "✗ etcd" not in text
        term.keys("C-n")
        term.wait(lambda s: "Network —" in s, "the Network page")
        term.keys("C-q")


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
def test_a_failed_apply_shows_its_reason_and_its_way_forward(size: tuple[int, int]) -> None:
    with terminal(lab.wizard_argv("demo", "--scenario", "etcd-down", "--speed", "50"), size) as term:
        term.wait(lambda s: "checks passed" in s, "Welcome")
        for page in ("etcd —", "Network —", "flanneld —", "Docker bridge —", "cgroup driver —", "Review —"):
            term.keys("C-n")
            term.wait(lambda s, p=page: p in s, page)
        term.wait(lambda s: "change(s) planned" in s, "the plan")
        term.keys("C-n")
        term.wait(lambda s: "Apply " in s and "Cancel" in s, "the confirmation")
        term.keys("BTab", "Enter")
        text = term.wait(lambda s: "refused the" in s and "Retry (ctrl+r)" in s, "the failure", timeout=30)
        # the reason, what to do and the way on are on screen without scrolling
        assert "what to do: check that etcd runs" in text and "Roll back (ctrl+b)" in text
        term.keys("C-b")
        text = term.wait(lambda s: "Rolled back" in s, "the roll back", timeout=30)
        assert "Retry, Roll back or Quit" not in text  # no stale choice left in the footer or the status
        term.keys("C-n")
        term.wait(lambda s: "Mesh —" in s, "the next page")
        term.keys("C-q")
