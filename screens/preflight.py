"""Welcome / preflight: what will happen on this node, and kubeadm-style checks as a live table.

Errors block Next until they are fixed or the operator ignores them by name (Enter on the row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Button, DataTable, Static

from screens.base import StepScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.preflight import Facts, Finding, Output

INTRO = (
    "Sets up this node's pod network: etcd → network → flanneld\n"
    "→ docker0 on flannel's subnet → one cgroup driver.\n"
    "Nothing changes before you confirm on Review; every change\n"
    "is journaled and can be undone."
)


class PreflightPage(StepScreen):
    NAME = "preflight"
    HEADING = "Welcome — what will happen, and is this node ready?"
    BINDINGS: ClassVar[list[Binding]] = [*StepScreen.BINDINGS, Binding("i", "ignore", "Ignore error", show=True),
                                         Binding("r", "recheck", "Check again")]

    findings: list[Finding] | None = None
    facts: Facts | None = None

    def body(self) -> ComposeResult:
        yield Static(INTRO, id="intro")
        yield Static("", id="file-problems", classes="problems")
        yield Static("checking the node…", id="preflight-status")
        table: DataTable[Any] = DataTable(id="preflight-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("result", "check", "detail")
        yield table
        yield Static("", id="finding-detail")
        yield Button("Check again", id="recheck", compact=True)

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
            detail = "" if f.ok else f"{f.message} — {f.fix}" if f.fix else f.message
            table.add_row(result, f.name, detail, key=f.name)
        errors = verdict.blocking
        ok = sum(1 for f in findings if f.ok)
        text = f"{ok} of {len(findings)} checks passed"
        if errors:
            text += f"; {len(errors)} error(s) block Next — fix them and press r, or select one and press i to ignore it"
        self.query_one("#preflight-status", Static).update(text)
        self.wizard.mark(self.NAME, "failed" if errors else "warn" if ok < len(findings) else "ok")

    def errors(self) -> list[str]:
        return self.verdict().blocking if self.facts is not None else []

    def action_ignore(self) -> None:
        table = self.query_one("#preflight-table", DataTable)
        if not self.findings or table.row_count == 0:
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        name = str(row_key.value)
        finding = next(f for f in self.findings if f.name == name)
        if finding.ok:
            return
        if name in self.session.ignore_preflight:
            self.session.ignore_preflight.discard(name)
        else:
            self.session.ignore_preflight.add(name)
        self.show_findings(self.findings)
        table.move_cursor(row=[f.name for f in self.findings].index(name))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # the detail column is off screen at 80 columns: the highlighted check's detail goes here
        finding = next((f for f in self.findings or [] if f.name == event.row_key.value), None)
        text = "" if finding is None or finding.ok else f"{finding.name}: {finding.message} — {finding.fix}"
        box = self.query_one("#finding-detail", Static)
        box.update(text)
        box.display = bool(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_ignore()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "recheck":
            event.stop()
            self.action_recheck()
            return
        super().on_button_pressed(event)

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
