"""The frame every page shares: demo marker, sidebar, title, body, Back/Next, footer; and forms
whose fields write straight into the session's answers and show their problems as you type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Select, Static, Switch

from screens.pages import PAGES, TITLES
from screens.widgets import FieldRow, FieldSpec, Sidebar, demo_marker, set_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from screens.app import WizardApp
    from wizard.session import Loc, Session


class StepScreen(Screen[None]):
    NAME: ClassVar[str] = ""
    HEADING: ClassVar[str] = ""
    SECTION: ClassVar[tuple[str, ...] | None] = None  # the part of the answers this page edits
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()
    ready = False  # composed and mounted: its widgets can be queried
    facts: Any = None  # the step's facts as the engine read them (pages of a step)
    error_labels: dict[str | None, Static]  # each field's problem line, by id (set on mount)
    nav_status: Static  # why Next may not go on
    section_problems: Static | None = None  # the problems no field of the page shows
    # keyboard first: a page opens with its first control focused, not the sidebar
    AUTO_FOCUS = "#body Input, #body Select, #body Switch, #body DataTable, #body Button, #body CollapsibleTitle, #next"

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "save", "Save answers"),
        # priority over an Input's ctrl+d (delete right), but only while there is an unknown key (check_action)
        Binding("ctrl+d", "drop_unknown", "Drop unknown keys", priority=True),
    ]

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    @property
    def session(self) -> Session:
        return self.wizard.session

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        session = self.session
        if session.scenario is not None:
            yield demo_marker(session.scenario, session.root)
        with Horizontal(id="frame"):
            yield Sidebar(self.wizard.statuses, self.NAME)
            with Vertical(id="page"):
                yield Static(self.HEADING or TITLES[self.NAME], id="heading")
                with VerticalScroll(id="body", can_focus=False):
                    yield from self.body()
                with Horizontal(id="nav"):
                    yield Static("", id="nav-status")
                    yield Button("Back", id="back", disabled=PAGES[0] == self.NAME, compact=True)
                    yield Button(self.next_label(), id="next", variant="primary", compact=True)
        yield Footer()

    def body(self) -> ComposeResult:
        yield Static("", id="section-problems", classes="problems")
        for spec in self.FIELDS:
            yield FieldRow(spec, self.session.get(spec.path))

    def next_label(self) -> str:
        return "Next"

    def on_mount(self) -> None:
        # the widgets a key redraws, found once: a query walks the whole page
        self.error_labels = {w.id: w for w in self.query(".field-error").results(Static)}
        self.nav_status = self.query_one("#nav-status", Static)
        self.section_problems = next(iter(self.query("#section-problems").results(Static)), None)
        self.show_problems()
        self.ready = True

    def on_screen_resume(self) -> None:
        self.wizard.mark(self.NAME, "current")
        for sidebar in self.query(Sidebar):
            sidebar.show(self.wizard.statuses)

    # ------------------------------------------------------------ navigation

    def refresh_status(self) -> None:
        """Recompute what the page said from the answers and results as they are now: a mark or a
        reason left from an earlier state would tell the operator something that is no longer true."""
        if not self.ready:
            return
        status = self.nav_status
        if str(status.content):
            set_text(status, self.blocked())
        if self.wizard.statuses.get(self.NAME) == "failed" and not self.blocked():
            self.wizard.statuses.pop(self.NAME, None)  # a fixed page shows as the current one again, not ✗
            self.wizard.mark(self.NAME, "current")

    def blocked(self) -> str:
        """Why Next may not go on yet ('' when it may)."""
        if self.SECTION is None:
            return ""
        problems = self.problems_under(self.SECTION)
        if problems:
            unknown = self.unknown_keys(self.SECTION)
            how = "; ctrl+d drops the unknown key(s)" if unknown else ""
            return f"{len(problems)} problem(s) on this page — fix them to go on{how}"
        return ""

    def action_next(self) -> None:
        reason = self.blocked()
        status = self.query_one("#nav-status", Static)
        if reason:
            status.update(reason)
            self.wizard.mark(self.NAME, "failed")
            return
        status.update("")
        self.wizard.mark(self.NAME, self.done_status())
        self.wizard.go(PAGES[PAGES.index(self.NAME) + 1] if PAGES[-1] != self.NAME else self.NAME)

    def done_status(self) -> str:
        return "ok"

    def action_back(self) -> None:
        index = PAGES.index(self.NAME)
        if index > 0:
            self.wizard.go(PAGES[index - 1])

    def action_save(self) -> None:
        self.wizard.save_answers()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "sidebar" and event.option.id:
            event.stop()
            self.wizard.go(event.option.id)

    # ------------------------------------------------------------ forms

    def spec_for(self, widget_id: str | None) -> FieldSpec | None:
        return next((s for s in self.FIELDS if s.id == widget_id), None)

    def edited(self, spec: FieldSpec, raw: Any) -> None:
        if spec.password:
            self.session.set_password(str(raw))
        else:
            self.session.set(spec.path, spec.to_value(raw))
        self.show_problems()
        self.changed(spec)

    def changed(self, spec: FieldSpec) -> None:
        """A field changed; pages with live previews redraw them here."""

    def on_input_changed(self, event: Input.Changed) -> None:
        if getattr(event, "taken", False) or event.value != event.input.value:
            # taken as the key was handled (take_edit), or stale: the field has changed since, and that
            # change was taken already or has its own message coming (applying this one would undo it)
            return
        spec = self.spec_for(event.input.id)
        if spec is not None:
            self.edited(spec, event.value)

    def take_edit(self, event: Input.Changed) -> bool:
        """A key typed into one of this page's fields, taken now (see FieldInput); False: leave it to the message."""
        if not self.ready:
            return False
        spec = self.spec_for(event.input.id)
        if spec is None:
            return False
        self.edited(spec, event.value)
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter moves on like Tab; on the last field it is Next
        if self.spec_for(event.input.id) is None:
            return
        inputs = [w for w in self.query(Input) if w.display and not w.disabled]
        if inputs and event.input is inputs[-1]:
            self.action_next()
        else:
            self.focus_next()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        spec = self.spec_for(event.switch.id)
        if spec is not None:
            self.edited(spec, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        spec = self.spec_for(event.select.id)
        if spec is not None:
            self.edited(spec, event.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "drop_unknown":  # in the footer only where there is such a key to drop
            return bool(self.SECTION and self.unknown_keys(self.SECTION))
        return True

    def action_drop_unknown(self) -> None:
        if not self.SECTION:
            return
        dropped = self.unknown_keys(self.SECTION)
        for loc in dropped:
            self.session.drop(loc)
        if dropped:
            self.notify(f"dropped {', '.join('.'.join(map(str, loc)) for loc in dropped)} from the answers")
        self.show_problems()
        self.refresh_bindings()

    def show_problems(self) -> None:
        """Each field's problems under it, the rest at the top; only the lines whose text changed are
        redrawn (a key usually changes one field's line, or none)."""
        if self.SECTION is None:
            return
        self.refresh_status()
        problems = self.problems_under(self.SECTION)
        shown: set[int] = set()
        for spec in self.FIELDS:
            mine = [(n, m) for n, (loc, m) in enumerate(problems) if tuple(loc[: len(spec.path)]) == spec.path]
            shown.update(n for n, _ in mine)
            label = self.error_labels.get(f"err-{spec.id}")
            if label is None:  # the row is not mounted (another backend's options)
                continue
            # keep_height: a value going valid and invalid while typed moves nothing below it
            set_text(label, "\n".join(f"✗ {m}" for _, m in mine), hide_empty=True, keep_height=True)
        unknown = set(self.unknown_keys(self.SECTION))
        rest = [m + (" — ctrl+d drops it from the answers" if tuple(loc) in unknown else "")
                for n, (loc, m) in enumerate(problems) if n not in shown]
        if self.section_problems is not None:
            set_text(self.section_problems, "\n".join(f"✗ {m}" for m in rest), hide_empty=True)

    def problems_under(self, prefix: Loc) -> list[tuple[Loc, str]]:
        """The answers' problems under `prefix`, validated once per state of the answers (the app keeps it)."""
        return self.wizard.problems_under(prefix)

    def unknown_keys(self, prefix: Loc) -> list[Loc]:
        return self.wizard.unknown_keys(prefix)

    # ------------------------------------------------------------ the step's facts

    def read_facts(self) -> None:
        """Ask the engine for this page's step facts in a worker; `show_facts` draws them when they come."""
        self.run_worker(self._read_facts, thread=True, exclusive=True, group=f"{self.NAME}-facts")

    def _read_facts(self) -> None:
        from wizard.errors import WizardError

        try:
            facts = self.session.inspect(self.NAME)
        except (WizardError, OSError, ValueError) as exc:
            self.app.call_from_thread(self.facts_failed, str(exc))
            return
        self.app.call_from_thread(self._got_facts, facts)

    def _got_facts(self, facts: Any) -> None:
        self.facts = facts
        self.show_facts()
        self.wizard.settle_heap()  # the facts stay as long as the page

    def show_facts(self) -> None:
        """Redraw what depends on the facts (and the answers)."""

    def facts_failed(self, why: str) -> None:
        self.notify(f"cannot read this node: {why}", severity="error")
