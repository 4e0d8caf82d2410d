"""Docker bridge: docker0 as it is beside what it becomes, the opts file options with a live
preview of the exact file mk-docker-opts.sh would write, and daemon.json on or off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Static, Switch

from screens.base import StepScreen
from screens.widgets import FieldRow, FieldSpec, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.docker import Facts

DAEMON_JSON_DEFAULT = "/etc/docker/daemon.json"
DAEMON_JSON = FieldSpec(("docker", "daemon_json"), "daemon.json path", optional=True, placeholder="off")
USE_DAEMON_JSON = FieldSpec(("docker", "use_daemon_json"), "Merge daemon.json", "bool",
                            help="bip and mtu into daemon.json unless docker.service passes them as flags")


class DockerPage(StepScreen):
    NAME = "docker"
    HEADING = "Docker bridge — docker0 onto flannel's subnet"
    SECTION = ("docker",)
    FIELDS = (
        FieldSpec(("docker", "bridge"), "Bridge", placeholder="docker0"),
        FieldSpec(("docker", "opts_file"), "Opts file", placeholder="auto"),
        FieldSpec(("docker", "opts", "individual"), "Individual (-i)", "bool", help="DOCKER_OPT_BIP=…, DOCKER_OPT_MTU=…"),
        FieldSpec(("docker", "opts", "combined"), "Combined (-c)", "bool", help='DOCKER_OPTS=" --bip=… --mtu=…"'),
        FieldSpec(("docker", "opts", "combined_key"), "Combined key (-k)", placeholder="auto"),
        FieldSpec(("docker", "opts", "ip_masq"), "--ip-masq (not -m)", "bool"),
        DAEMON_JSON,
        FieldSpec(("docker", "service"), "Service", placeholder="docker"),
    )

    facts: Facts | None = None

    def body(self) -> ComposeResult:
        with Horizontal(id="bridge-compare"):
            yield Static("docker0 now: reading…", id="bridge-now", classes="half")
            yield Static("", id="bridge-then", classes="half")
        yield Static("", id="section-problems", classes="problems")
        get = self.session.get
        for spec in self.FIELDS:
            yield FieldRow(spec, get(spec.path))
            if spec.path == ("docker", "opts", "ip_masq"):
                yield FieldRow(USE_DAEMON_JSON, get(("docker", "daemon_json")) is not None)
        yield Static("", id="opts-preview")

    def on_mount(self) -> None:
        super().on_mount()
        self.read_facts()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.ready:
            self.read_facts()  # flanneld's page may have changed what it reads (iface, subnet file)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == USE_DAEMON_JSON.id:
            event.stop()
            path = self.session.get(("docker", "daemon_json")) or DAEMON_JSON_DEFAULT
            field = self.query_one(f"#{DAEMON_JSON.id}")
            field.value = path if event.value else ""  # type: ignore[attr-defined]
            return
        super().on_switch_changed(event)

    def changed(self, spec: FieldSpec) -> None:
        if spec.path == ("docker", "daemon_json"):
            switch = self.query_one(f"#{USE_DAEMON_JSON.id}", Switch)
            with switch.prevent(Switch.Changed):
                switch.value = self.session.get(spec.path) is not None
        self.preview()

    def show_facts(self) -> None:
        self.preview()

    def preview(self) -> None:
        """The docker step's plan for these answers, as apply will make it: the bridge before and after,
        and the opts file byte for byte (or, before flanneld has its lease, for the first lease it may get)."""
        from wizard.changes import BridgeAddress, FileWrite

        answers = self.session.partial()
        name = answers.docker.bridge
        now = Text(f"{name} now\n", style="bold")
        facts = self.facts
        if facts is None:
            now.append("reading…")
            self.query_one("#bridge-now", Static).update(now)
            return
        if facts.bridge is None:
            now.append("does not exist yet (docker creates it)")
        else:
            now.append(f"{', '.join(facts.bridge.ipv4) or 'no IPv4 address'}\nMTU {facts.bridge.mtu}")
        self.query_one("#bridge-now", Static).update(now)
        then = Text(f"{name} after\n", style="bold")
        if self.problems_under(("docker",)) or self.problems_under(("network",)):
            out = Text(f"{answers.docker.opts_file}, exactly:\n", style="bold")
            self.query_one("#bridge-then", Static).update(Text("fix the problems on this page and Network first",
                                                               style="dim"))
            self.query_one("#opts-preview", Static).update(out.append("fix the problems above to see the file", style="dim"))
            return
        plan = self.session.plan("docker", facts)
        # the engine decides the file from docker's unit when the answer is auto
        opts_file: str = getattr(plan.output, "opts_file", None) or answers.docker.opts_file
        out = Text(f"{opts_file}, exactly:\n", style="bold")
        bridge = next((c for c in plan.changes if isinstance(c, BridgeAddress)), None)
        files = [c for c in plan.changes if isinstance(c, FileWrite)]
        failed = next((n for n in plan.notes if n.status in ("failed", "warn")), None)
        if bridge is not None:
            then.append(f"{bridge.address or bridge.expect}\nMTU {bridge.mtu}\n")
            if bridge.pending_on:
                then.append(f"known once {bridge.pending_on} is taken", style="dim")
        else:
            then.append_text(status_text(failed.status, failed.message) if failed else Text(
                "\n".join(n.message for n in plan.notes), style="dim"))
        self.query_one("#bridge-then", Static).update(then)
        opts = next((c for c in files if c.path == opts_file), None)
        if opts is None:
            out.append_text(status_text(failed.status, failed.message, failed.detail) if failed
                            else Text("(unchanged)", style="dim"))
        elif opts.new is not None:
            out.append(opts.new.decode(errors="replace"))
        else:
            out.append(f"(for {opts.example_for}; the lease decides)\n", style="dim")
            out.append((opts.example or b"").decode(errors="replace"))
        if opts is not None and opts.why:
            out.append(f"({opts.why})", style="dim")  # whether docker.service passes it to dockerd
        for change in files:
            if change is not opts:
                out.append(f"\n{change.summary()}", style="dim")
        self.query_one("#opts-preview", Static).update(out)


PAGE = DockerPage
