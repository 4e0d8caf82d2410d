"""Welcome / preflight: what will happen on this node (in the demo: what the scenario shows), and
kubeadm-style checks as a live table. The highlighted check's whole detail is shown, wrapped, under
the table; Enter on a row opens it in a dialog. Errors block Next until they are fixed or the
operator ignores them by name (i on the row).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from screens.base import StepScreen
from screens.starting import HEADING as WELCOME
from screens.starting import INTRO, scenario_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.preflight import Facts, Finding, Output

class FindingDetail(ModalScreen[bool]):
    """One check in full: what it found, how to fix it, and that i ignores it by name."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape,enter,q", "dismiss(False)", "Close"),
        Binding("i", "dismiss(True)", "Ignore / un-ignore"),
    ]

    def __init__(self, finding: Finding, ignored: bool) -> None:
        super().__init__()
        self.finding = finding
        self.ignored = ignored

    def compose(self) -> ComposeResult:
        f = self.finding
        out = Text()
        out.append(f"{f.name}\n", style="bold")
        if f.ok:
            out.append("✓ passed", style="green")
        else:
            state = f"{f.severity.lower()} (ignored)" if self.ignored else f.severity.lower()
            out.append(f"{'✗' if f.severity == 'ERROR' else '⚠'} {state}: ", style="bold red" if f.severity == "ERROR" else "yellow")
            out.append(f.message)
            if f.fix:
                out.append("\nHow to fix: ", style="bold")
                out.append(f.fix)
        keys = "Esc or Enter closes"
        if not f.ok:
            what = "un-ignores it" if self.ignored else f"ignores it (as --ignore-preflight-errors {f.name})"
            keys = f"i {what} · {keys}"
        with Vertical(id="finding"):
            yield Static(out, id="finding-text")
            yield Static(keys, id="finding-keys")


class PreflightPage(StepScreen):
    NAME = "preflight"
    HEADING = WELCOME
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        # Enter on a row shows its detail (priority: before the table's own Enter; elsewhere it passes on)
        Binding("enter", "details", "Details", priority=True),
        # ctrl+s still saves here; the footer leaves its room to the keys of the checks
        *(dataclasses.replace(b, show=False) if isinstance(b, Binding) and b.action == "save" else b
          for b in StepScreen.BINDINGS),
        Binding("i", "ignore", "Ignore"),
        Binding("r", "recheck", "Recheck"),
        Binding("c", "check_node", "Check node", tooltip="check this node now: every step's verify, no change"),
    ]

    findings: list[Finding] | None = None
    facts: Facts | None = None

    def body(self) -> ComposeResult:
        yield Static(INTRO, id="intro")
        if self.session.scenario is not None:
            yield Static(scenario_text(self.session.scenario), id="scenario-about")
        yield Static("", id="file-problems", classes="problems")
        yield Static("checking the node…", id="preflight-status")
        # no detail column (it would be cut at 80 columns): the highlighted check's detail, whole and
        # wrapped, is right under the table
        table: DataTable[Any] = DataTable(id="preflight-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("result", "check")
        yield table
        yield Static("", id="finding-detail")
        with Horizontal(id="preflight-buttons"):
            yield Button("Check again", id="recheck", compact=True)
            # the doctor: is this node (already set up, or half) healthy? Reads only, changes nothing
            yield Button("Check this node", id="check-node", compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        general = [p for p in self.session.file_problems if not p.loc]
        if self.session.file_problems:
            where = self.session.source or "the answers file"
            lines = [f"{where}: {len(self.session.file_problems)} problem(s), each shown on its page"]
            lines += [f"✗ line {p.line}: {p.message}" for p in general]
            self.query_one("#file-problems", Static).update("\n".join(lines))
        self.query_one("#file-problems", Static).display = bool(self.session.file_problems)
        self.action_recheck()

    def action_recheck(self) -> None:
        self.query_one("#preflight-status", Static).update("checking the node…")
        self.wizard.mark(self.NAME, "running")
        self.run_checks()

    @work(thread=True, exclusive=True, group="preflight")
    def run_checks(self) -> None:
        from wizard.errors import WizardError

        try:
            facts = self.session.inspect("preflight")
        except (WizardError, OSError) as exc:
            self.app.call_from_thread(self.query_one("#preflight-status", Static).update, f"the checks could not run: {exc}")
            return
        self.app.call_from_thread(self.show_facts, facts)

    def show_facts(self, facts: Facts) -> None:
        self.facts = facts
        self.show_findings(facts.findings)

    def verdict(self) -> Output:
        """The engine's verdict on the findings with the errors ignored now."""
        assert self.facts is not None
        output: Output = self.session.plan("preflight", self.facts).output
        return output

    def show_findings(self, findings: list[Finding]) -> None:
        self.findings = findings
        verdict = self.verdict()
        table = self.query_one("#preflight-table", DataTable)
        table.clear()
        for f in findings:
            if f.ok:
                result = Text("ok", style="green")
            elif f.name in verdict.ignored:
                result = Text(f"{f.severity.lower()} (ignored)", style="dim")
            elif f.severity == "ERROR":
                result = Text("error", style="bold red")
            else:
                result = Text("warning", style="yellow")
            table.add_row(result, f.name, key=f.name)
        errors = verdict.blocking
        ok = sum(1 for f in findings if f.ok)
        text = f"{ok} of {len(findings)} checks passed"
        if errors:
            text += f"; {len(errors)} error(s) block Next — fix them and press r, or press i on one to ignore it"
        self.query_one("#preflight-status", Static).update(text)
        self.refresh_bindings()  # Enter's Details needs a row
        self.wizard.mark(self.NAME, "failed" if errors else "warn" if ok < len(findings) else "ok")

    def highlighted(self) -> Finding | None:
        table = self.query_one("#preflight-table", DataTable)
        if not self.findings or table.row_count == 0:
            return None
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((f for f in self.findings if f.name == name), None)

    def errors(self) -> list[str]:
        return self.verdict().blocking if self.facts is not None else []

    def action_ignore(self) -> None:
        finding = self.highlighted()
        if finding is None or finding.ok or not self.findings:
            return
        name = finding.name
        table = self.query_one("#preflight-table", DataTable)
        if name in self.session.ignore_preflight:
            self.session.ignore_preflight.discard(name)
        else:
            self.session.ignore_preflight.add(name)
        self.show_findings(self.findings)
        table.move_cursor(row=[f.name for f in self.findings].index(name))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # the highlighted check's whole detail, wrapped: never cut at the table's edge
        finding = next((f for f in self.findings or [] if f.name == event.row_key.value), None)
        if finding is None:
            text = ""
        elif finding.ok:
            text = f"{finding.name}: ok"
        else:
            text = f"{finding.name}: {finding.message}" + (f" — {finding.fix}" if finding.fix else "")
        box = self.query_one("#finding-detail", Static)
        box.update(text)
        box.display = bool(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()  # a click on the highlighted row, as Enter

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "details":  # Enter is the table's only: on a button or the sidebar it does what it does there
            return isinstance(self.focused, DataTable) and self.highlighted() is not None
        if action == "back":
            return False  # the first page: nothing to go back to
        return super().check_action(action, parameters)

    def action_details(self) -> None:
        finding = self.highlighted()
        if finding is None:
            return
        ignored = finding.name in self.session.ignore_preflight

        def done(ignore: bool | None) -> None:
            if ignore:
                self.action_ignore()

        self.app.push_screen(FindingDetail(finding, ignored), done)

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # Enter's "Details" is in the footer while the table has the focus

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "recheck":
            event.stop()
            self.action_recheck()
            return
        if event.button.id == "check-node":
            event.stop()
            self.action_check_node()
            return
        super().on_button_pressed(event)

    def action_check_node(self) -> None:
        """Check this node: the engine's check (inspect, plan, verify of every step; no change) on its own
        screen, which Esc leaves; what was typed on the pages stays."""
        from screens.check import CheckScreen

        if getattr(self.wizard.get_screen("apply"), "running", False):
            # a check read while Apply changes the node would report states in between
            self.notify("Apply is running: check the node once it has finished", severity="warning")
            return
        self.app.push_screen(CheckScreen())

    def blocked(self) -> str:
        if self.findings is None:
            return "the checks are still running"
        errors = self.errors()
        if errors:
            return f"{len(errors)} preflight error(s): {', '.join(errors)} — fix or ignore (i)"
        return ""

    def done_status(self) -> str:
        return "warn" if any(not f.ok for f in self.findings or []) else "ok"


PAGE = PreflightPage
