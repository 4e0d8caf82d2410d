"""cgroup driver: the runtime's and kubelet's drivers as detected, side by side; kubelet's own
mismatch message when they differ; the choice, with the recommendation and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from screens.base import StepScreen
from screens.widgets import FieldSpec, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.cgroup import Facts, Output

class CgroupPage(StepScreen):
    NAME = "cgroup"
    HEADING = "cgroup driver — one for kubelet and the runtime"
    SECTION = ("cgroup",)
    FIELDS = (
        FieldSpec(("cgroup", "driver"), "Driver", "select", options=(
            ("auto (recommended: follow PID 1)", "auto"), ("systemd", "systemd"), ("cgroupfs", "cgroupfs"))),
        FieldSpec(("cgroup", "runtime"), "Runtime", "select", options=(
            ("auto (detect)", "auto"), ("docker", "docker"), ("containerd", "containerd"), ("cri-o", "cri-o"))),
        FieldSpec(("cgroup", "kubelet_config"), "kubelet config", placeholder="/var/lib/kubelet/config.yaml"),
        FieldSpec(("cgroup", "kubelet_env"), "kubelet env file", placeholder="/etc/kubernetes/kubelet"),
    )

    facts: Facts | None = None

    def body(self) -> ComposeResult:
        yield Static("", id="mismatch")
        # one line each, full width: a path in the source wraps whole onto the next line, not mid-name
        with Vertical(id="drivers"):
            yield Static("runtime: detecting…", id="runtime-driver")
            yield Static("kubelet: detecting…", id="kubelet-driver")
        yield from super().body()
        yield Static("", id="recommendation")

    def on_mount(self) -> None:
        super().on_mount()
        self.read_facts()

    def facts_failed(self, why: str) -> None:
        self.query_one("#runtime-driver", Static).update(Text(f"cannot read the drivers: {why}", style="red"))

    def changed(self, spec: FieldSpec) -> None:
        if spec.path[1] in ("runtime", "kubelet_config", "kubelet_env"):
            self.read_facts()  # another runtime or file: read the drivers again
        self.show_facts()

    def show_facts(self) -> None:
        """The drivers as the engine read them, and its plan for the answers as they are now."""
        from wizard.changes import FileWrite

        facts = self.facts
        if facts is None:
            return
        rt, kl = facts.runtime_driver, facts.kubelet_driver
        width = max(len(facts.runtime), len("kubelet"))
        self.query_one("#runtime-driver", Static).update(
            Text.assemble((f"{facts.runtime:<{width}}  ", "bold"), f"{rt.driver}  ", (f"({rt.source})", "dim")))
        self.query_one("#kubelet-driver", Static).update(
            Text.assemble((f"{'kubelet':<{width}}  ", "bold"), f"{kl.driver}  ", (f"({kl.source})", "dim")))
        plan = self.session.plan("cgroup", facts)
        out_: Output = plan.output
        banner = self.query_one("#mismatch", Static)
        mismatch = next((n for n in plan.notes if n.status == "warn"), None)
        if mismatch is not None:
            banner.update(Text(mismatch.message, style="bold"))
            banner.set_class(True, "banner-error")
        elif facts.kubelet_from_cri:
            banner.update(Text(facts.kubelet_from_cri, style="green"))
            banner.set_class(False, "banner-error")
        else:
            banner.update(Text(f"kubelet and {facts.runtime} agree: {rt.driver}", style="green"))
            banner.set_class(False, "banner-error")
        out = Text(f"Both will use {out_.target}.", style="bold")
        if out_.changing:
            out.append(f" Changes: {', '.join(out_.changing)} (then restarted).")
        else:
            out.append(" Nothing to change.")
        writes = [c.summary() for c in plan.to_make if isinstance(c, FileWrite)]
        if writes:
            out.append("\n" + "\n".join(f"will {w}" for w in writes), style="dim")
        failed = next((n for n in plan.notes if n.status == "failed"), None)
        if failed is not None:
            out.append_text(status_text("failed", failed.message, failed.detail))
        out.append(f"\nRecommended: {out_.recommended}. {out_.recommendation}", style="dim")
        if out_.target != out_.recommended:
            out.append(f"\n⚠ {out_.target} differs from the recommendation for this node.", style="yellow")
        self.query_one("#recommendation", Static).update(out)


PAGE = CgroupPage
