"""cgroup driver: the runtime's and kubelet's drivers as detected, side by side; kubelet's own
mismatch message when they differ; the choice, with the recommendation and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.containers import Horizontal
from textual.widgets import Static

from screens.base import StepScreen
from screens.widgets import FieldSpec

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.cgroup import Facts

WHY = {
    "systemd": "PID 1 is systemd, which already manages cgroups. Kubernetes recommends the systemd driver "
               "then: two managers with their own view of the cgroup tree make the node unstable under pressure.",
    "cgroupfs": "PID 1 is not systemd, so there is no systemd cgroup manager to follow: cgroupfs is the right driver.",
}


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
    init_systemd: bool = False

    def body(self) -> ComposeResult:
        yield Static("", id="mismatch")
        with Horizontal(id="drivers"):
            yield Static("runtime: detecting…", id="runtime-driver", classes="half")
            yield Static("kubelet: detecting…", id="kubelet-driver", classes="half")
        yield from super().body()
        yield Static("", id="recommendation")

    def on_mount(self) -> None:
        super().on_mount()
        self.detect()

    @work(thread=True, exclusive=True, group="cgroup-facts")
    def detect(self) -> None:
        from wizard import runtimes
        from wizard.errors import WizardError
        from wizard.steps import cgroup

        ctx = self.session.preview()
        try:
            facts = cgroup.inspect(ctx)
        except (WizardError, OSError, ValueError) as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        init = runtimes.systemd_is_init(self.session.node)
        self.app.call_from_thread(self._got, facts, init)

    def _failed(self, why: str) -> None:
        self.query_one("#runtime-driver", Static).update(Text(f"cannot read the drivers: {why}", style="red"))

    def _got(self, facts: Facts, init_systemd: bool) -> None:
        self.facts, self.init_systemd = facts, init_systemd
        self.render_facts()

    def changed(self, spec: FieldSpec) -> None:
        if spec.path[1] in ("runtime", "kubelet_config", "kubelet_env"):
            self.detect()  # another runtime or file: read the drivers again
        self.render_facts()

    def target(self) -> str:
        chosen = self.session.get(("cgroup", "driver")) or "auto"
        if chosen != "auto":
            return str(chosen)
        return "systemd" if self.init_systemd else "cgroupfs"

    def render_facts(self) -> None:
        from wizard import runtimes

        facts = self.facts
        if facts is None:
            return
        rt, kl = facts.runtime_driver, facts.kubelet_driver
        self.query_one("#runtime-driver", Static).update(
            Text.assemble((f"{facts.runtime}\n", "bold"), f"{rt.driver}\n", (rt.source, "dim")))
        self.query_one("#kubelet-driver", Static).update(
            Text.assemble(("kubelet\n", "bold"), f"{kl.driver}\n", (kl.source, "dim")))
        target = self.target()
        banner = self.query_one("#mismatch", Static)
        if rt.driver != kl.driver:
            banner.update(Text(runtimes.mismatch_message(kl.driver, facts.runtime, rt.driver), style="bold"))
            banner.set_class(True, "banner-error")
        else:
            banner.update(Text(f"kubelet and {facts.runtime} agree: {rt.driver}", style="green"))
            banner.set_class(False, "banner-error")
        natural = "systemd" if self.init_systemd else "cgroupfs"
        out = Text(f"Both will use {target}.", style="bold")
        changes = [who for who, d in ((facts.runtime, rt.driver), ("kubelet", kl.driver)) if d != target]
        out.append(f" Changes: {', '.join(changes)} (then restarted)." if changes else " Nothing to change.")
        out.append(f"\nRecommended: {natural}. {WHY[natural]}", style="dim")
        if target != natural:
            out.append(f"\n⚠ {target} differs from the recommendation for this node.", style="yellow")
        self.query_one("#recommendation", Static).update(out)


PAGE = CgroupPage
