"""etcd: where flannel's config lives. "Test connection" runs in a worker and shows the cluster
version, the PREFIX/config already there (with a diff against what will be written) and how many leases
are taken; ctrl+l lists every lease (a note's `items`), filtered as you type, however many thousand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Button, Input, Static

from screens.base import StepScreen
from screens.widgets import FieldSpec, diff_text, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps import Plan
    from wizard.steps.etcd import Facts

LIST_KEY = "ctrl+l"


class LinesView(ScrollView, can_focus=True):
    """Lines of plain text, only those on screen rendered: 16 000 leases cost what 20 do."""

    DEFAULT_CSS = "LinesView { height: 1fr; }"

    def __init__(self, lines: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show(lines)

    def show(self, lines: list[str]) -> None:
        self.lines = lines
        self.virtual_size = Size(max(map(len, lines), default=0), len(lines))
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        return Strip([Segment(self.lines[index], self.rich_style)]).crop_extend(scroll_x, scroll_x + width,
                                                                                 self.rich_style)


class ItemsScreen(ModalScreen[None]):
    """A note's whole listing (every lease under PREFIX/subnets/), with a filter: the page says how many,
    this says which."""

    DEFAULT_CSS = """
    ItemsScreen { align: center middle; }
    #items { width: 90%; max-width: 100; height: 90%; border: thick $accent; background: $surface; padding: 0 1; }
    #items-title { height: auto; text-style: bold; }
    #items-count, #items-keys { height: auto; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss", "Close")]  # type: ignore[assignment]

    def __init__(self, title: str, items: tuple[str, ...]) -> None:
        super().__init__()
        self.title_text = title
        self.items = list(items)

    def compose(self) -> ComposeResult:
        with Vertical(id="items"):
            yield Static(self.title_text, id="items-title")
            yield Input(placeholder="filter: part of a subnet or PublicIP", id="items-filter")
            yield Static(self.count_text(len(self.items)), id="items-count")
            yield LinesView(self.items, id="items-lines")
            yield Static("type to filter · Tab, then ↑ ↓ PgUp PgDn scroll · Esc closes", id="items-keys")

    def count_text(self, shown: int) -> str:
        return f"{shown} of {len(self.items)}" if shown != len(self.items) else f"all {len(self.items)}"

    def on_input_changed(self, event: Input.Changed) -> None:
        # a substring test per line: ~2 ms for 16 000, well inside a frame, so no worker is needed here
        wanted = event.value.strip()
        lines = [line for line in self.items if wanted in line] if wanted else self.items
        self.query_one(LinesView).show(lines)
        self.query_one("#items-count", Static).update(self.count_text(len(lines)))

# editing these makes a probe's result stale: it was for another cluster or key
PROBED = ("endpoints", "prefix", "api", "timeout_s", "ca_file", "cert_file", "key_file", "username", "password",
          "password_env", "password_file")


class EtcdPage(StepScreen):
    NAME = "etcd"
    HEADING = "etcd — where flannel keeps its network config"
    SECTION = ("etcd",)
    BINDINGS: ClassVar[list[Binding]] = [*StepScreen.BINDINGS, Binding("ctrl+t", "test", "Test connection"),
                                         Binding(LIST_KEY, "list_items", "Leases", tooltip="every lease under PREFIX/subnets/, with a filter")]
    FIELDS = (
        FieldSpec(("etcd", "endpoints"), "Endpoints", "list", placeholder="http://127.0.0.1:2379",
                  help="comma separated; the first that answers is used"),
        FieldSpec(("etcd", "prefix"), "Prefix", placeholder="/kube-centos/network",
                  help="flanneld reads PREFIX/config and leases under PREFIX/subnets/"),
        FieldSpec(("etcd", "api"), "API", "select",
                  options=(("auto: the one flanneld reads", "auto"), ("v3 (flanneld ≥ 0.18)", "v3"),
                           ("v2 keys API (flanneld < 0.18)", "v2")),
                  help="auto asks `flanneld --version`: v2 before v0.18.0, v3 from then on (v3 without flanneld)"),
        FieldSpec(("etcd", "on_existing"), "on_existing", "select",
                  options=(("fail: stop, show the diff", "fail"), ("keep: leave the config there", "keep"),
                           ("replace: write the answers'", "replace")),
                  help="when PREFIX/config already holds another config; with fail, apply stops at etcd"),
        FieldSpec(("etcd", "timeout_s"), "Timeout (s)", "float"),
        FieldSpec(("etcd", "ca_file"), "CA file", optional=True, placeholder="none (plain http)"),
        FieldSpec(("etcd", "cert_file"), "Client cert", optional=True, placeholder="none"),
        FieldSpec(("etcd", "key_file"), "Client key", optional=True, placeholder="none"),
        FieldSpec(("etcd", "username"), "Username", optional=True, placeholder="none (no auth)"),
        FieldSpec(("etcd", "password"), "Password", password=True, placeholder="typed here, never saved",
                  help="kept in memory; saved answers name it by reference (password_env)"),
        FieldSpec(("etcd", "password_env"), "…or env var", optional=True, placeholder="e.g. ETCD_PASSWORD"),
        FieldSpec(("etcd", "password_file"), "…or file", optional=True, placeholder="e.g. /root/.etcd-password"),
    )

    probing = False
    facts: Facts | None = None  # the last probe's facts, for the answers it was made with
    plan: Plan | None = None  # the engine's plan for those facts, as last shown
    probe_id = 0  # a probe's result is shown only if no edit or newer probe came after it
    plan_id = 0  # likewise for a plan made again after an edit that keeps the facts (on_existing)
    late = 0  # results that came back for settings edited since (dropped, not shown)

    def body(self) -> ComposeResult:
        yield from super().body()
        yield Button("Test connection", id="test", compact=True)
        yield Static("", id="probe")

    def action_test(self) -> None:
        if self.session.problems_under(("etcd",)):
            self.query_one("#probe", Static).update(Text("fix the problems above first", style="red"))
            return
        self.probing = True
        self.facts = None
        self.probe_id += 1
        self.query_one("#probe", Static).update(f"connecting to {', '.join(self.session.get(('etcd', 'endpoints')) or [])} …")
        self.probe(self.probe_id)

    @work(thread=True, group="etcd-probe")
    def probe(self, probe_id: int) -> None:
        """Inspect and plan off the event loop: at 16 000 leases each takes tens of milliseconds."""
        from wizard.errors import WizardError

        try:
            facts = self.session.inspect("etcd")
            plan = self.session.plan("etcd", facts) if facts.reachable else None
        except (WizardError, OSError) as exc:
            self.app.call_from_thread(self.show_error, str(exc), probe_id)
            return
        self.app.call_from_thread(self.show_probe, facts, plan, probe_id)

    def current(self, probe_id: int) -> bool:
        if probe_id != self.probe_id:
            self.late += 1
            return False
        return True

    def show_error(self, why: str, probe_id: int) -> None:
        if not self.current(probe_id):
            return
        self.probing = False
        self.query_one("#probe", Static).update(Text(f"✗ {why}", style="red"))
        self.wizard.mark(self.NAME, "failed")

    def show_probe(self, facts: Facts, plan: Plan | None, probe_id: int) -> None:
        if not self.current(probe_id):
            return
        self.probing = False
        self.facts, self.plan = facts, plan
        self.render_probe()
        self.wizard.settle_heap()  # the leases stay until the next Test connection

    @work(thread=True, group="etcd-plan", exclusive=True)
    def replan(self, probe_id: int, plan_id: int) -> None:
        """The plan again for the same facts after an edit such as on_existing (off the event loop too)."""
        facts = self.facts
        if facts is None or not facts.reachable:
            return
        plan = self.session.plan("etcd", facts)
        self.app.call_from_thread(self.show_plan, plan, probe_id, plan_id)

    def show_plan(self, plan: Plan, probe_id: int, plan_id: int) -> None:
        if probe_id != self.probe_id or plan_id != self.plan_id:
            self.late += 1
            return
        self.plan = plan
        self.render_probe()

    def render_probe(self) -> None:
        """The engine's plan for these facts and the answers as they were planned: the same verdict apply
        gives. A note's items (the leases) are counted here, listed by ctrl+l."""
        facts = self.facts
        if facts is None:
            return
        box = self.query_one("#probe", Static)
        if not facts.reachable:
            assert facts.error is not None
            box.update(Text(f"✗ {facts.error.what}\n  {facts.error.fix}", style="red"))
            self.wizard.mark(self.NAME, "failed")
            return
        plan = self.plan
        if plan is None:
            return
        out = Text()
        for note in plan.notes:
            out.append_text(status_text(note.status, note.message))
            out.append("\n")
            if note.detail:
                out.append_text(diff_text(note.detail))
            if note.items:
                out.append(f"  {LIST_KEY} lists them ({len(note.items)})\n", style="dim")
        for change in plan.changes:
            out.append(f"will {change.summary()}:\n", style="bold")
            out.append_text(diff_text(change.detail()))
        box.update(out)
        self.wizard.mark(self.NAME, "failed" if plan.failed else "current")

    def action_list_items(self) -> None:
        """Every lease, one key away: the listing of the plan's note that has one."""
        note = next((n for n in self.plan.notes if n.items), None) if self.plan and self.facts else None
        if note is None:
            self.notify("Test connection first (ctrl+t): the leases come from etcd", severity="warning")
            return
        self.app.push_screen(ItemsScreen(note.message, note.items))

    def changed(self, spec: FieldSpec) -> None:
        if spec.path[-1] in PROBED and (self.facts is not None or self.probing):
            # a result for other settings would mislead: say so, and let the operator test again
            self.facts, self.plan, self.probing = None, None, False
            self.probe_id += 1  # what the probe in flight brings back is for the old settings
            self.query_one("#probe", Static).update(Text("settings changed — Test connection again (ctrl+t)", style="dim"))
            if self.wizard.statuses.get(self.NAME) == "failed":
                self.wizard.mark(self.NAME, "")
        elif self.facts is not None:
            self.plan_id += 1  # on_existing and friends: same facts, new verdict
            self.replan(self.probe_id, self.plan_id)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "test":
            event.stop()
            self.action_test()
            return
        super().on_button_pressed(event)


PAGE = EtcdPage
