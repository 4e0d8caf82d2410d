"""flanneld: the interface it uses, IP masquerading, and its environment file, with the lines the
wizard will write shown as you type, and which channel flanneld's unit reads them through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from screens.base import StepScreen
from screens.widgets import FieldSpec, diff_text, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.flanneld import Facts

# editing these means other files: read them again
READS = ("env_file", "subnet_file", "service", "iface")


class FlanneldPage(StepScreen):
    NAME = "flanneld"
    HEADING = "flanneld — its options and environment file"
    SECTION = ("flanneld",)
    FIELDS = (
        FieldSpec(("flanneld", "iface"), "Interface", optional=True, placeholder="the default route's device",
                  help="-iface: the interface other nodes reach this one on"),
        FieldSpec(("flanneld", "ip_masq"), "IP masquerade", "bool",
                  help="-ip-masq: flanneld masquerades traffic leaving the pod network (docker then gets --ip-masq=false)"),
        FieldSpec(("flanneld", "env_file"), "Env file", placeholder="/etc/sysconfig/flanneld"),
        FieldSpec(("flanneld", "subnet_file"), "Subnet file", placeholder="/run/flannel/subnet.env"),
        FieldSpec(("flanneld", "service"), "Service", placeholder="flanneld"),
        FieldSpec(("flanneld", "wait_s"), "Wait (s)", "float", help="how long to wait for the subnet file after the restart"),
    )

    def body(self) -> ComposeResult:
        yield from super().body()
        yield Static("", id="env-preview")

    facts: Facts | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.read_facts()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.ready:
            self.read_facts()  # the etcd page may have changed the endpoints, the prefix or the auth

    def changed(self, spec: FieldSpec) -> None:
        if spec.path[-1] in READS:
            self.read_facts()
        self.preview()

    def show_facts(self) -> None:
        self.preview()

    def preview(self) -> None:
        """The flanneld step's plan for these answers: the env file's diff, as apply will write it."""
        box = self.query_one("#env-preview", Static)
        if self.facts is None:
            box.update(Text("reading flanneld's files…", style="dim"))
            return
        if self.problems_under(("flanneld",)) or self.problems_under(("etcd",)):
            box.update(Text("fix the problems on this page and etcd to see the file", style="dim"))
            return
        plan = self.session.plan("flanneld", self.facts)
        out = Text()
        for note in plan.notes:
            # the channel the unit reads (and why), and what stops the step: a missing interface, a conflicting flag
            out.append_text(status_text(note.status, note.message, note.detail if note.status != "ok" else ""))
            out.append("\n")
        for change in plan.changes:
            if change.in_place():
                out.append(f"✓ in place: {change.summary()}\n", style="dim")
                continue
            out.append(f"will {change.summary()}\n", style="bold")
            out.append_text(diff_text(change.detail()))
        box.update(out)


    def blocked(self) -> str:
        reason = super().blocked()
        if reason or self.facts is None:
            return reason
        failed = next((n for n in self.session.plan("flanneld", self.facts).notes if n.status == "failed"), None)
        return f"{failed.message} — {failed.detail}" if failed else ""


PAGE = FlanneldPage
