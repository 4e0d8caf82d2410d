"""Help and discoverability: F1 / ? help for every page (what it does, its keys, each field's answers
key), ctrl+q and F1 in every footer, the palette's page jumps in page order, the preflight detail that
is never cut, switches in words, Finish's next steps, and the demo saying what it shows and that it is
playing. Pilot for the logic at 80×24 and 100×30; the real process in tmux at 80×24 once."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Switch
from textual.widgets._footer import FooterKey

from screens.app import WizardApp, _screen_class
from screens.finish import next_steps
from screens.help import HelpScreen, field_help, field_rows, help_plain, is_key, key_rows
from screens.pages import PAGES, TITLES
from screens.preflight import FindingDetail
from screens.widgets import DemoBanner
from tests import lab
from tests.tui import FAST, confirm_apply, demo_app, goto, press, run, shown, type_into, until
from wizard import scenarios
from wizard.journal import DEFAULT_STATE_DIR
from wizard.node.simulated import SimulatedNode
from wizard.session import Session

SIZES = [(80, 24), (100, 30)]


def help_open(app: WizardApp) -> bool:
    return isinstance(app.screen, HelpScreen)


async def ready_page(pilot: Any, app: WizardApp, name: str) -> None:
    await goto(pilot, app, name)
    if name == "preflight":
        await until(pilot, lambda: app.screen.findings is not None, what="the checks")
    await pilot.pause()


# ---------------------------------------------------------------- the help screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_f1_and_question_mark_open_the_pages_help_and_esc_q_question_mark_f1_close_it(size: tuple[int, int]) -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=size) as pilot:
            ways = [("f1", "escape"), ("question_mark", "q"), ("f1", "question_mark"), ("question_mark", "f1")]
            for n, name in enumerate(PAGES):
                await ready_page(pilot, app, name)
                page = app.screen
                for opener, closer in (ways[n % 4], ways[(n + 1) % 4]):  # every way, twice, over the pages
                    if isinstance(app.screen.focused, Input):
                        app.screen.set_focus(None)  # "?" is a character in a text field (tested below)
                        await pilot.pause()
                    await pilot.press(opener)
                    await until(pilot, lambda: help_open(app), what=f"help on {name} by {opener}")
                    assert app.screen.page is page  # type: ignore[attr-defined]
                    assert str(app.screen.query_one("#help-title").content) == f"Help — {TITLES[name]}"
                    await pilot.press(closer)
                    await until(pilot, lambda p=page: app.screen is p, what=f"{closer} closing the help on {name}")

    run(main())


def test_question_mark_types_into_a_text_field_and_f1_opens_help_from_there() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            field = app.screen.query_one("#f-etcd-prefix", Input)
            field.focus()
            await pilot.pause()
            await pilot.press("end")
            before = field.value
            await pilot.press("question_mark")
            await pilot.pause()
            assert field.value == before + "?" and not help_open(app)
            await pilot.press("f1")
            await until(pilot, lambda: help_open(app), what="F1 from a text field")
            assert field.value == before + "?"
            await pilot.press("escape")
            await until(pilot, lambda: not help_open(app))
            assert app.screen.focused is field  # back where the operator was typing

    run(main())


def test_help_says_what_the_page_does_its_keys_and_each_fields_answers_key() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(100, 30)) as pilot:
            await goto(pilot, app, "etcd")
            text = help_plain(app.screen)
            assert "Test connection asks etcd for its version" in text
            keys = dict(key_rows(app.screen))
            assert keys["^n"] == "Next" and keys["^t"] == "Test connection" and keys["esc"] == "Back"
            assert keys["f1, ?"] == "this help" and keys["^q"].startswith("quit")
            assert "Endpoints  etcd.endpoints" in text
            assert "Password  not saved: named by etcd.password_env or etcd.password_file" in text
            await pilot.press("f1")
            await until(pilot, lambda: help_open(app))
            shown_text = "\n".join(str(w.render()) for w in app.screen.query(".help-part"))
            assert "etcd.on_existing" in shown_text

            await goto(pilot, app, "network")
            rows = {spec.label: where for spec, where, _ in field_rows(app.screen)}
            # the backend in use shows its options, not another backend's
            assert rows["VNI"] == "network.backend.vni" and "PSK file" not in rows
            assert rows["DirectRouting"] == "network.backend.direct_routing"
            assert rows["SubnetMin"] == "network.subnet_min"  # collapsed under "advanced", still listed

            await goto(pilot, app, "finish")
            assert dict(key_rows(app.screen))["^n"] == "Quit"  # what Next is on this page

    run(main())


def test_every_field_of_every_page_names_its_answers_key_and_has_help() -> None:
    seen = 0
    for name in PAGES:
        for spec in _screen_class(name).FIELDS:  # type: ignore[attr-defined]
            seen += 1
            assert field_help(spec), f"{name}: field {spec.label} has no help text"
            if not spec.password and spec.path != ("docker", "use_daemon_json"):
                assert is_key(spec), f"{name}: {'.'.join(spec.path)} is not a key of the answers"
    assert seen > 40


def test_help_leaves_out_keys_the_page_does_not_offer_now() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready_page(pilot, app, "preflight")
            keys = dict(key_rows(app.screen))
            assert "esc" not in keys  # the first page: no Back
            await goto(pilot, app, "apply")
            actions = [words for _, words in key_rows(app.screen)]
            assert "Retry" not in actions and "Roll back" not in actions  # nothing has failed

    run(main())


# ---------------------------------------------------------------- footer and palette


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_footer_shows_quit_and_help_within_the_screen(size: tuple[int, int]) -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=size) as pilot:
            for name in PAGES:
                await ready_page(pilot, app, name)
                await until(pilot, lambda: app.screen.query(FooterKey), what=f"the footer of {name}")
                await pilot.pause()
                keys = {k.key: k for k in app.screen.query(FooterKey)}
                palette = next(k for k in keys.values() if k.has_class("-command-palette"))
                for key, words in (("ctrl+q", "Quit"), ("f1", "Help")):
                    assert key in keys, f"{key} not in the footer of {name}"
                    item = keys[key]
                    assert item.description == words
                    region = item.region
                    # on screen, and not under the palette key docked right
                    assert region.width > 0 and region.right <= palette.region.x, f"{key} is cut on {name}"

    run(main())


def footer_fits(app: WizardApp) -> None:
    keys = {k.key: k for k in app.screen.query(FooterKey)}
    width = app.screen.size.width
    for key, words in (("ctrl+q", "Quit"), ("f1", "Help")):
        assert key in keys and keys[key].description == words, f"{key} not in the footer of {app.screen_name}"
        region = keys[key].region
        assert region.width > 0 and region.right <= width, f"{key} is cut on {app.screen_name}"


def test_a_crowded_footer_keeps_quit_and_help_and_lets_the_palette_hint_go() -> None:
    async def main() -> None:
        app = demo_app("etcd-down")
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 1
            await until(pilot, lambda: app.screen_name == "apply" and "ctrl+r" in
                        {k.key for k in app.screen.query(FooterKey)}, what="Retry in the footer")
            await pilot.pause()
            footer_fits(app)  # ^n, esc, ^s, ^r Retry, ^b Roll back, then ^q Quit and F1 Help

    run(main())


def test_palette_lists_the_page_jumps_in_page_order() -> None:
    from textual.command import CommandList, CommandPalette

    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(100, 30)) as pilot:
            await ready_page(pilot, app, "preflight")
            for query in ("", "jump"):
                await pilot.press("ctrl+p")
                await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
                if query:
                    await pilot.press(*query)
                palette = app.screen

                def jumps(palette: Any = palette) -> list[str]:
                    listed = palette.query_one(CommandList)
                    prompts = [str(listed.get_option_at_index(i).prompt).split("\n")[0]
                               for i in range(listed.option_count)]
                    return [p for p in prompts if p.startswith("Jump to ")]

                await until(pilot, lambda: len(jumps()) == len(PAGES), what=f"the jumps for {query!r}")
                assert jumps() == [f"Jump to {TITLES[n]}" for n in PAGES]
                await pilot.press("escape")
                await until(pilot, lambda: not isinstance(app.screen, CommandPalette))
            assert "Help for this page" in [c.title for c in app.get_system_commands(app.screen)]

    run(main())


# ---------------------------------------------------------------- preflight


def vxlan_missing() -> dict[str, Any]:
    profile = scenarios.load("fresh-node")
    profile["kernel"]["modules"] = ["br_netfilter"]
    return profile


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_preflight_enter_shows_the_whole_detail_and_i_ignores(size: tuple[int, int]) -> None:
    async def main() -> None:
        app = demo_app(vxlan_missing())
        async with app.run_test(size=size) as pilot:
            await ready_page(pilot, app, "preflight")
            page = app.screen
            table = page.query_one("#preflight-table", DataTable)
            assert [str(c.label) for c in table.columns.values()] == ["result", "check"]  # no column to cut
            table.focus()
            table.move_cursor(row=[f.name for f in page.findings].index("KernelModule-vxlan"))
            await pilot.pause()
            footer = {k.key: k.description for k in page.query(FooterKey)}
            assert footer.get("enter") == "Details" and footer.get("i") == "Ignore"
            # the highlighted check's detail, whole, on screen under the table
            detail = page.query_one("#finding-detail")
            assert shown(app, "#finding-detail") == "KernelModule-vxlan: kernel module vxlan is not loaded — modprobe vxlan"
            assert detail.region.bottom <= page.query_one("#body").region.bottom
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, FindingDetail), what="the detail")
            text = str(app.screen.query_one("#finding-text").render())
            assert "kernel module vxlan is not loaded" in text and "How to fix: modprobe vxlan" in text
            assert "i ignores it (as --ignore-preflight-errors KernelModule-vxlan)" in str(
                app.screen.query_one("#finding-keys").render())
            assert app.session.ignore_preflight == set()  # Enter only shows
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is page)
            await pilot.press("i")
            assert app.session.ignore_preflight == {"KernelModule-vxlan"}
            # i inside the detail un-ignores it again
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, FindingDetail))
            await pilot.press("i")
            await until(pilot, lambda: app.screen is page)
            assert app.session.ignore_preflight == set()

    run(main())


def test_preflight_enter_on_the_check_again_button_presses_it() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready_page(pilot, app, "preflight")
            page = app.screen
            checks: list[int] = []
            page.run_checks = lambda: checks.append(1)  # type: ignore[method-assign]
            await press(pilot, app, "recheck")
            assert checks == [1] and not isinstance(app.screen, FindingDetail)
            footer = {k.key for k in page.query(FooterKey)}
            assert "enter" not in footer  # Details is the table's; the footer says so only there

    run(main())


def test_a_long_preflight_detail_wraps_instead_of_being_cut() -> None:
    profile = scenarios.load("fresh-node")
    profile["kernel"]["modules"] = ["br_netfilter"]

    async def main() -> None:
        app = demo_app(profile, answers=None)
        app.session.draft["flanneld"]["iface"] = "eth9"  # the interface check's fix is a long sentence
        async with app.run_test(size=(80, 24)) as pilot:
            await ready_page(pilot, app, "preflight")
            page = app.screen
            names = [f.name for f in page.findings]
            if "Interface-eth9" not in names:
                pytest.skip("preflight does not check flanneld.iface in this tree")
            table = page.query_one("#preflight-table", DataTable)
            table.focus()
            table.move_cursor(row=names.index("Interface-eth9"))
            await pilot.pause()
            finding = next(f for f in page.findings if f.name == "Interface-eth9")
            assert shown(app, "#finding-detail") == f"Interface-eth9: {finding.message} — {finding.fix}"
            box = page.query_one("#finding-detail")
            assert box.region.height > 1 and box.region.right <= 80  # wrapped on screen

    run(main())


# ---------------------------------------------------------------- switches in words


def test_switches_say_on_or_off_and_follow_the_value() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            for label in ("DirectRouting", "GBP", "Learning"):
                row = next(r for r in app.screen.query(".field") if getattr(r, "spec", None) and r.spec.label == label
                           and r.spec.key == "vxlan")
                word = row.query_one(".switch-state")
                assert str(word.content) == "off"
                row.query_one(Switch).focus()
                await pilot.press("space")
                await pilot.pause()
                assert str(word.content) == "on" and word.has_class("-on")
                assert app.session.get(row.spec.path) is True
            await goto(pilot, app, "docker")
            # a switch the page sets itself (with its Changed message held back) still says its state
            row = next(r for r in app.screen.query(".field") if getattr(r, "spec", None)
                       and r.spec.path == ("docker", "use_daemon_json"))
            assert str(row.query_one(".switch-state").content) == "on"
            await type_into(pilot, app, "f-docker-daemon-json", "")
            assert str(row.query_one(".switch-state").content) == "off"

    run(main())


# ---------------------------------------------------------------- finish


def test_finish_ends_with_next_steps_labelled_for_a_real_node_in_the_demo(tmp_path: Path) -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "review")
            assert await confirm_apply(pilot, app) == 0
            await goto(pilot, app, "finish")
            summary = shown(app, "#finish-summary")
            path = app.save_path
            assert "Next steps on a real node (demo: only shown)" in summary
            assert f"flannel-wizard apply \\\n      {path}\n" in summary
            assert "(Save answers above writes the file)" in summary
            assert f"flannel-wizard plan \\\n      {path}\n" in summary and "0 changes" in summary
            assert "flannel-wizard explain-service example-service" in summary
            assert "--root" not in summary  # a real node's defaults, not the demo's directory
            for label, text in app.session.undo_advice():  # the session's own advice, as it gives it
                assert (f"{label}: {text}" if label else text) in summary
            assert summary.rstrip().endswith(app.session.undo_advice()[-1][1])
            target = tmp_path / "answers.yaml"
            await type_into(pilot, app, "save-path", str(target))
            assert f"      {target}\n" in shown(app, "#finish-summary")
            await press(pilot, app, "save")
            await until(pilot, lambda: target.exists(), what="the saved file")
            assert "(Save answers above writes the file)" not in shown(app, "#finish-summary")

    run(main())


def test_next_steps_on_a_real_node_carry_root_and_state_dir_only_when_not_default(tmp_path: Path) -> None:
    node = SimulatedNode(scenarios.load("fresh-node"), speed=FAST, root=str(tmp_path / "root"))
    session = Session(node)  # no scenario: the wizard's own session, on a --root
    text = next_steps(session, "/srv/answers.yaml", saved=True).plain
    assert "Next steps\n" in text and "demo" not in text.split("Undo")[0]
    assert f"--root {node.root}" in text and "--state-dir" not in text
    session.state_dir = "/var/lib/other"
    text = next_steps(session, "/srv/answers.yaml", saved=True).plain
    assert "--state-dir /var/lib/other" in text and DEFAULT_STATE_DIR not in text.split("Undo")[0]
    session.ignore_preflight.add("Swap")
    assert "--ignore-preflight-errors Swap" in next_steps(session, "/srv/answers.yaml", saved=True).plain


# ---------------------------------------------------------------- the demo


@pytest.mark.parametrize("name", scenarios.names())
def test_welcome_says_what_the_scenario_shows(name: str) -> None:
    profile = scenarios.load(name)
    assert profile.get("title") and profile.get("shows"), f"{name}.yaml needs title: and shows:"

    async def main() -> None:
        app = demo_app(name)
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "preflight")
            about = shown(app, "#scenario-about")
            assert about == f"Demo scenario: {profile['title']}\nShows: {profile['shows']}"
            assert app.screen.query_one("#scenario-about").region.bottom <= 24

    run(main())


def test_autoplay_says_it_is_playing_until_a_key_takes_over() -> None:
    async def main() -> None:
        app = demo_app(autoplay=True, speed=1.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen_name == "preflight" and app.screen.ready)
            await pilot.pause()
            assert "▶ AUTOPLAY" in shown(app, "#demo-banner") and "any key to take over" in shown(app, "#demo-banner")
            assert app.screen.query_one(DemoBanner).region.height == 2
            await pilot.press("down")
            assert app.autoplay is False
            await pilot.pause()
            for name in PAGES:  # every page's banner, also those not on screen
                for banner in app.get_screen(name).query(DemoBanner):
                    assert "AUTOPLAY" not in str(banner.content)
            assert app.screen.query_one(DemoBanner).region.height == 1

    run(main())


def test_autoplay_that_ends_by_itself_says_so_and_drops_the_indicator() -> None:
    async def main() -> None:
        app = demo_app(autoplay=True, speed=FAST)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen_name == "finish", timeout=60, what="autoplay to reach Finish")
            await until(pilot, lambda: not app.autoplay, what="autoplay to end")
            await pilot.pause()
            assert "AUTOPLAY" not in shown(app, "#demo-banner")
            assert any("autoplay ended at Finish" in str(n.message) for n in app._notifications)

    run(main())


# ---------------------------------------------------------------- the real process in tmux


SCROLLBARS = str.maketrans("", "", "▁▂▃▄▅▆▇▔")


class Tmux:
    """The real `flannel-wizard demo` in a tmux window of a given size, on a private server socket
    (its own name each time), killed in `close`."""

    def __init__(self, tmp: Path, args: list[str], size: tuple[int, int] = (80, 24)) -> None:
        self.socket = str(tmp / f"tmux-{uuid.uuid4().hex[:8]}.sock")
        self.session = f"fw-{uuid.uuid4().hex[:8]}"
        env = {"PYTHONPATH": str(lab.REPO), "TMPDIR": os.environ.get("TMPDIR", str(tmp)), "TERM": "xterm-256color"}
        command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(lab.wizard_argv(*args))])
        self.tmux("new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]), command)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait_for(self, *texts: str, timeout: float = 20.0, gone: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            flat = " ".join(" ".join(line.split("▕")[-1].translate(SCROLLBARS).split()) for line in screen.splitlines())
            if all((t in flat) != gone for t in texts):
                return flat
            if time.monotonic() > deadline:
                raise AssertionError(f"{'still' if gone else 'not'} on screen after {timeout}s: {texts}\n{screen}")
            time.sleep(0.1)

    def wait_for_any(self, *texts: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flat = self.wait_for(timeout=timeout)
            found = next((t for t in texts if t in flat), "")
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"none of {texts} on screen after {timeout}s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
        Path(self.socket).unlink(missing_ok=True)


@contextmanager
def tmux_demo(tmp: Path, *args: str) -> Iterator[Tmux]:
    term = Tmux(tmp, ["demo", "--speed", "50", *args])
    try:
        yield term
    finally:
        term.close()


def words(text: str) -> str:
    return " ".join(text.split())


def test_real_terminal_help_and_welcome_of_two_scenarios(tmp_path: Path) -> None:
    for name in ("fresh-node", "cgroup-mismatch"):
        profile = scenarios.load(name)
        with tmux_demo(tmp_path, "--scenario", name) as term:
            # Welcome says what the scenario shows (the sidebar's column is left out: the text wraps beside it)
            screen = term.wait_for("checks passed", "Demo scenario:", "Shows:", "⏎ Details")
            assert words(f"Demo scenario: {profile['title']}") in screen
            assert words(profile["shows"])[:40] in screen
            assert "^q Quit" in screen and "f1 Help" in screen and "⏎ Details" in screen
            if name == "fresh-node":
                help_in_a_real_terminal(term)
            term.keys("C-q")
            deadline = time.monotonic() + 15
            while _alive(term):  # the demo ended, and with it the only window of its server
                if time.monotonic() > deadline:
                    raise AssertionError(f"ctrl+q did not end the demo:\n{term.screen()}")
                time.sleep(0.1)


def help_in_a_real_terminal(term: Tmux) -> None:
    term.keys("F1")
    screen = term.wait_for("Help — Welcome", "Keys", "this help")
    assert "Enter on a check shows its whole detail" in screen
    term.keys("Escape")  # (a key right after Esc would read as alt+key: wait for Esc to act)
    term.wait_for("Help — Welcome", gone=True)
    term.keys("?")
    term.wait_for("Help — Welcome")
    term.keys("q")
    term.wait_for("Help — Welcome", gone=True)
    term.keys("Enter")  # on the first check: its detail
    term.wait_for("IsPrivilegedUser", "passed", "Esc or Enter closes")
    term.keys("Escape")
    term.wait_for("Esc or Enter closes", gone=True)
    term.keys("C-n")
    term.wait_for("etcd — where flannel keeps its network config")
    term.keys("?")  # typed into the focused field (replacing what focus selected, or after it)
    assert term.wait_for_any("Endpoints ?", "Endpoints http://127.0.0.1:2379?")
    assert "Help — etcd" not in term.screen()
    term.keys("F1")  # F1 opens the help from inside the text field
    term.wait_for("Help — etcd", "^t Test connection")
    term.keys("PageDown")  # the fields come after the keys
    term.wait_for("Help — etcd", "Endpoints etcd.endpoints")
    term.keys("Escape")
    term.wait_for("Help — etcd", gone=True)


def _alive(term: Tmux) -> bool:
    return subprocess.run(["tmux", "-S", term.socket, "has-session", "-t", term.session],
                          capture_output=True, timeout=10).returncode == 0


# ---------------------------------------------------------------- looks (snapshots at 80×24)

def test_snapshot_help_on_the_etcd_page(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await goto(pilot, pilot.app, "etcd")
        await pilot.press("f1")
        await until(pilot, lambda: help_open(pilot.app))
        await pilot.pause()

    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=before)


def test_snapshot_preflight_detail_of_a_failed_check(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        app = pilot.app
        await until(pilot, lambda: app.screen.findings is not None)
        table = app.screen.query_one("#preflight-table", DataTable)
        table.focus()
        row = [f.name for f in app.screen.findings].index("KernelModule-vxlan")
        table.move_cursor(row=row)
        # The highlighted check's detail under the table (longer for this one) shrinks the table after
        # the table has scrolled its cursor into view, so where the scroll ends depended on timing.
        # Once the detail is there, the cursor is brought into view again: the picture is of that.
        detail = app.screen.query_one("#finding-detail")
        await until(pilot, lambda: "vxlan" in str(detail.content), what="the check's detail")
        await pilot.pause()
        table.move_cursor(row=row)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FindingDetail))
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(demo_app(vxlan_missing()), terminal_size=(80, 24), run_before=before)
