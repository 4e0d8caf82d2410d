"""The wizard and the demo as real processes: on a pseudo-terminal, without one, with bad options;
and the UI answering keys while an etcd endpoint that never answers is being tried."""

from __future__ import annotations

import asyncio
import gc
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from textual import events

from tests import lab
from tests.conftest import run_wizard
from tests.ptyterm import Terminal
from tests.tui import goto, run, until
from wizard.node import Node
from wizard.session import Session


def test_demo_runs_on_a_terminal_and_quits_cleanly(tmp_path: Path) -> None:
    term = Terminal(lab.wizard_argv("demo", "--speed", "50"), cwd=str(tmp_path),
                    env={**__import__("os").environ, "PYTHONPATH": str(lab.REPO)})
    try:
        term.read_until("DEMO — simulated node · scenario fresh-node".encode(), timeout=15)
        term.read_until(b"13 of 13 checks passed", timeout=15)
        term.send(b"\x11")  # ctrl+q
        assert term.wait() == 0
    finally:
        term.close()
    tail = term.output.decode(errors="replace")
    assert f"removed the demo's files ({tempfile.gettempdir()}/flannel-wizard-demo-fresh-node-" in tail
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_wizard_without_a_terminal_says_so() -> None:
    done = run_wizard()
    assert done.returncode == 2
    assert "error: the interactive wizard needs a terminal — run it from a terminal (ssh -t), or replay headless: " \
           "`flannel-wizard apply FILE`" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_bad_options_are_clear() -> None:
    done = run_wizard("demo", "--scenario", "laptop")
    assert done.returncode == 2
    assert ("error: no demo scenario 'laptop' — scenarios are cgroup-mismatch, etcd-down, existing-config, "
            "fresh-node, mesh-broken, old-flanneld, smoke-fails") in done.stderr
    done = run_wizard("demo", "--speed", "0")
    assert done.returncode == 2 and "0 is out of range; give 0.1 to 100" in done.stderr


def test_keys_are_answered_within_100ms_while_etcd_does_not_answer(tmp_path: Path) -> None:
    # a listener that accepts and never speaks: gRPC waits out the whole timeout on it
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    accepted = threading.Event()
    held: list[socket.socket] = []

    def hold() -> None:
        conn, _ = silent.accept()
        held.append(conn)
        accepted.set()

    threading.Thread(target=hold, daemon=True).start()
    session = Session(Node(str(tmp_path)))
    session.set(("etcd", "endpoints"), [f"http://127.0.0.1:{port}"])
    session.set(("etcd", "timeout_s"), 6.0)

    async def main() -> list[float]:
        from screens.app import WizardApp

        app = WizardApp(session)
        delays = []
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            await pilot.press("ctrl+t")
            await until(pilot, accepted.is_set, what="the connection to the silent endpoint")
            field = app.screen.query_one("#f-etcd-prefix")
            field.focus()
            await pilot.pause()
            for key in "abcdefghij":
                # posted the way the terminal driver posts a key, then timed until the field shows it
                # (Pilot's own press() waits for the whole process to go idle, which is not what we measure)
                t0 = time.monotonic()
                app.post_message(events.Key(key, key))
                while not field.value.endswith(key):
                    assert time.monotonic() - t0 < 1, "the key was not handled within a second"
                    await asyncio.sleep(0.001)
                delays.append(time.monotonic() - t0)
            # the prefix changed while the probe waited: its answer would be for another key
            assert "settings changed — Test connection again" in str(app.screen.query_one("#probe").content)
            page = app.screen
            await until(pilot, lambda: page.late == 1, timeout=10, what="the old probe to time out")
            assert "settings changed — Test connection again" in str(app.screen.query_one("#probe").content)
        return delays

    # What is measured is the app, not the heap of every test this pytest process ran before: a full
    # collection of that heap took 130 ms once in CI. Freezing it keeps those objects out of the collector.
    gc.collect()
    gc.freeze()
    try:
        delays = run(main())
    finally:
        gc.unfreeze()
        for conn in held:
            conn.close()
        silent.close()
    print("key delays ms", [round(d * 1000, 1) for d in delays])
    assert max(delays) < 0.1, delays


def test_the_first_frame_comes_before_the_session_and_the_welcome_page_then_works() -> None:
    """`demo` hands the app what makes the session: the Welcome page's frame is drawn first, the session
    is made in a worker, and then the real Welcome page runs its checks and takes keys."""
    import threading

    from screens.app import WizardApp
    from screens.starting import StartingPage
    from tests.tui import FAST
    from wizard import scenarios
    from wizard.node.simulated import SimulatedNode

    profile = scenarios.load("fresh-node")
    release = threading.Event()
    made: list[SimulatedNode] = []

    def make() -> Session:
        release.wait(10)  # held until the first frame has been seen
        node = SimulatedNode(profile, speed=FAST)
        made.append(node)
        return Session(node, scenario=profile)

    async def main() -> None:
        app = WizardApp(make, scenario=profile)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartingPage)
            assert "DEMO — simulated node · scenario fresh-node" in str(app.screen.query_one("#demo-banner").content)
            assert not app.pages  # no page made yet
            first = cells(app)
            await pilot.press("ctrl+p", "escape", "f1")  # keys before the session: nothing breaks
            app.go("network")  # a jump before the session goes nowhere
            release.set()
            await until(pilot, lambda: app.screen_name == "preflight" and app.screen.ready, what="the Welcome page")
            await until(pilot, lambda: "13 of 13 checks passed" in str(app.screen.query_one("#preflight-status").content))
            # the first frame's lookalikes are drawn as the real page draws its sidebar, text and Back: the
            # banner, the sidebar and the text above the checks do not change, cell for cell (but the
            # Welcome step's icon, ● then ✓), nor does the Back button on the nav row
            real = cells(app)
            assert first[1][0][0] == "●" and real[1][0][0] == "✓"
            first[1][0] = real[1][0]
            assert first[:13] == real[:13]
            back = slice(62, 70)
            assert "".join(c for c, _ in first[22][back]) == "  Back  "
            assert first[22][back] == real[22][back]
            assert set(app.pages) == {"preflight"}  # the other pages are made on their first visit
            await pilot.press("ctrl+n")
            await until(pilot, lambda: app.screen_name == "etcd" and app.screen.ready, what="the etcd page")

    try:
        run(main())
    finally:
        import shutil

        for node in made:
            shutil.rmtree(node.root, ignore_errors=True)


def cells(app: Any) -> list[list[tuple[str, tuple[Any, ...]]]]:
    """The screen as drawn: each cell's character and what the terminal shows of its style (a blank's
    colour and weight show nothing, so they are not compared)."""
    rows = []
    for strip in app.screen._compositor.render_strips():
        row = []
        for segment in strip:
            style = segment.style
            for char in segment.text:
                if style is None:
                    row.append((char, ()))
                    continue
                bg = style.bgcolor.get_truecolor().hex if style.bgcolor else None
                if char == " ":
                    row.append((char, (bg, bool(style.reverse))))
                    continue
                fg = style.color.get_truecolor().hex if style.color else None
                row.append((char, (bg, bool(style.reverse), fg, bool(style.bold), bool(style.dim), bool(style.italic),
                                   bool(style.underline))))
        rows.append(row)
    return rows


def test_what_making_the_session_raises_is_raised_by_run_after_the_app_ends() -> None:
    from screens.app import WizardApp
    from wizard.errors import InputError

    def make() -> Session:
        raise InputError("cannot read answers.yaml", "check the path")

    async def main() -> WizardApp:
        app = WizardApp(make)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.load_error is not None, what="the error")
        return app

    app = run(main())
    assert isinstance(app.load_error, InputError)
    assert app.return_value == 2  # the exit code the CLI gives bad input, should the error get lost
