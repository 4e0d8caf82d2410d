"""Mesh: can this node reach every other node through the overlay? The mesh step's checks as a table,
one row per peer (the check's subject) with its status and the first hop that failed, and the selected
peer's checks in full under it; node-wide checks (no subject) above it.

The page asks nothing and never touches the node: it renders the engine's typed checks, from the last
Apply (live while it runs) or the last Check this node on Welcome, whichever came last. Rows come from
each check's `subject` and `hop`, never from its message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from screens.base import StepScreen
from screens.widgets import status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

ABOUT = ("Each other node's lease, from here: underlay, port, overlay state, its flannel.1 and "
         "docker0 via the tunnel, path MTU.")
RESULT = {"ok": ("ok", "green"), "warn": ("warning", "yellow"), "failed": ("failed", "bold red"),
          "skipped": ("skipped", "dim"), "running": ("…", "bold"), "pending": ("…", "dim")}
WORST = ("failed", "warn", "skipped", "ok")
ICON = {"ok": ("✓", "green"), "warn": ("⚠", "yellow"), "failed": ("✗", "bold red"), "skipped": ("–", "dim")}  # a row shows the worst status among its checks


class CheckLike(Protocol):
    """A mesh check as the engine gives it: a NoteInfo of a RunResult, or a StepEvent of kind check
    (both frozen: read-only here)."""

    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def hop(self) -> str: ...


def worst(checks: list[CheckLike]) -> str:
    statuses = {c.status for c in checks}
    return next((s for s in WORST if s in statuses), "ok")


def first_failing_hop(checks: list[CheckLike]) -> str:
    """The hop of the first check that failed (else the first that warned): where to start looking."""
    for wanted in ("failed", "warn"):
        found = next((c for c in checks if c.status == wanted), None)
        if found is not None:
            return found.hop or "—"
    return "—"


def by_peer(checks: list[CheckLike]) -> dict[str, list[CheckLike]]:
    """The peers' checks by subject, in the order the engine gave them."""
    out: dict[str, list[CheckLike]] = {}
    for check in checks:
        if check.subject:
            out.setdefault(check.subject, []).append(check)
    return out


class MeshPage(StepScreen):
    NAME = "mesh"
    HEADING = "Mesh — every other node, through the overlay"
    HELP: ClassVar[str] = (
        "The mesh step proves the overlay from this node to every other lease in etcd: the peer's "
        "PublicIP on the underlay, the backend's UDP port, the routes, neighbours and fdb entries flannel "
        "programmed for it, ICMP to its flannel.1 (.0) and docker0 (.1) through the tunnel, and the "
        "path MTU. It runs during Apply after the cgroup step, and with Check this node on Welcome. One "
        "row per node; ↑ ↓ selects one and its checks are shown in full under the table. The page only "
        "shows what the engine found; it changes nothing."
    )

    pinned: str | None = None  # the node the operator moved the cursor to

    def body(self) -> ComposeResult:
        yield Static(ABOUT, id="mesh-about")
        yield Static("", id="mesh-summary")
        yield Static("", id="mesh-node")
        table: DataTable[Any] = DataTable(id="mesh-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("result", "node", "first failing hop")
        yield table
        yield Vertical(id="mesh-detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.show()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show()

    # ------------------------------------------------------------ what the engine found

    def checks(self) -> list[CheckLike]:
        return list(self.wizard.mesh_checks)

    def show(self) -> None:
        """Redraw from the engine's checks (called again by the app as Apply's mesh events arrive)."""
        if not self.ready:
            return
        checks = self.checks()
        peers = by_peer(checks)
        summary = self.query_one("#mesh-summary", Static)
        table = self.query_one("#mesh-table", DataTable)
        origin = self.wizard.mesh_origin
        if not checks:
            running = origin == "apply" and getattr(self.wizard.get_screen("apply"), "running", False)
            summary.update(Text("Apply is running; the mesh step comes after cgroup." if running else
                                "It runs during Apply (after cgroup) and with Check this node on Welcome; "
                                "nothing has run yet.", style="dim"))
            table.clear()
            table.display = False
            self.query_one("#mesh-node", Static).display = False
            self.show_detail(None)
            return
        failed = [p for p, cs in peers.items() if worst(cs) == "failed"]
        where = "last Apply" if origin == "apply" else "last check"
        if failed:
            text = Text(f"✗ {len(failed)} of {len(peers)} nodes not reached via the overlay", style="bold red")
        elif any(worst(cs) == "warn" for cs in peers.values()):
            text = Text(f"⚠ {len(peers)} nodes reached, with warnings", style="yellow")
        elif peers:
            text = Text(f"✓ {len(peers)} nodes reached via the overlay", style="green")
        else:
            text = Text("no other node to reach", style="dim")
        text.append(f" · {where}", style="dim")
        summary.update(text)
        # node-wide checks about something (a hop: forward policy, this node's port, its device); the
        # step's own tally has none and says what the table shows, unless there is no table
        node = [c for c in checks if not c.subject and (c.hop or not peers)]
        box = self.query_one("#mesh-node", Static)
        lines = Text()
        for n, check in enumerate(sorted(node, key=lambda c: WORST.index(c.status) if c.status in WORST else 9)):
            if n:
                lines.append("\n")
            label = f"{check.hop}: {check.message}" if check.hop else check.message
            lines.append_text(status_text(check.status, label, check.detail if check.status != "ok" else ""))
        box.update(lines)
        box.display = bool(node)
        # the row the operator chose, else the first node that failed: the page opens on the problem
        target = self.pinned if self.pinned in peers else \
            next((p for p, cs in peers.items() if worst(cs) == "failed"), next(iter(peers), None))
        # rebuilt without its highlight messages: a RowHighlighted that arrives is the operator's own move
        with table.prevent(DataTable.RowHighlighted):
            table.clear()
            for subject, mine in peers.items():
                word, style = RESULT.get(worst(mine), (worst(mine), ""))
                table.add_row(Text(word, style=style), subject, first_failing_hop(mine), key=subject)
            if target is not None:
                table.move_cursor(row=list(peers).index(target), animate=False)
        table.display = bool(peers)
        self.show_detail(target)

    def show_detail(self, subject: str | None) -> None:
        """The selected peer's checks, whole and wrapped (never cut at the table's edge): for each, the hop
        and what was found, and what to do indented under it."""
        box = self.query_one("#mesh-detail", Vertical)
        mine = by_peer(self.checks()).get(subject or "", [])
        box.remove_children()
        widgets: list[Static] = []
        for check in mine:
            icon, style = ICON.get(check.status, ("·", ""))
            line = Text(f"{icon} ", style=style)
            if check.hop:
                line.append(f"{check.hop}: ", style="bold")
            line.append(check.message)
            widgets.append(Static(line, classes="mesh-what"))
            if check.detail:
                widgets.append(Static(Text(check.detail.strip(), style="dim"), classes="mesh-fix"))
        box.mount_all(widgets)
        box.display = bool(mine)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "mesh-table" and event.row_key.value is not None:
            self.pinned = str(event.row_key.value)
            self.show_detail(self.pinned)

    def blocked(self) -> str:
        if getattr(self.wizard.get_screen("apply"), "running", False):
            return "still applying"
        return ""


PAGE = MeshPage
