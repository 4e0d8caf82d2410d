"""etcd: where flannel's config lives. "Test connection" runs in a worker and shows the cluster
version, the PREFIX/config already there (with a diff against what will be written) and the leases."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Button, Static

from screens.base import StepScreen
from screens.widgets import FieldSpec, diff_text, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps.etcd import Facts

# editing these makes a probe's result stale: it was for another cluster or key
PROBED = ("endpoints", "prefix", "api", "timeout_s", "ca_file", "cert_file", "key_file", "username", "password",
          "password_env", "password_file")


class EtcdPage(StepScreen):
    NAME = "etcd"
    HEADING = "etcd — where flannel keeps its network config"
    SECTION = ("etcd",)
    BINDINGS: ClassVar[list[Binding]] = [*StepScreen.BINDINGS, Binding("ctrl+t", "test", "Test connection")]
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
    probe_id = 0  # a probe's result is shown only if no edit or newer probe came after it
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
        from wizard.errors import WizardError

        try:
            facts = self.session.inspect("etcd")
        except (WizardError, OSError) as exc:
            self.app.call_from_thread(self.show_error, str(exc), probe_id)
            return
        self.app.call_from_thread(self.show_probe, facts, probe_id)

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

    def show_probe(self, facts: Facts, probe_id: int) -> None:
        if not self.current(probe_id):
            return
        self.probing = False
        self.facts = facts
        self.render_probe()

    def render_probe(self) -> None:
        """The engine's plan for these facts and the answers as they are now: the same verdict apply gives."""
        facts = self.facts
        if facts is None:
            return
        box = self.query_one("#probe", Static)
        if not facts.reachable:
            assert facts.error is not None
            box.update(Text(f"✗ {facts.error.what}\n  {facts.error.fix}", style="red"))
            self.wizard.mark(self.NAME, "failed")
            return
        plan = self.session.plan("etcd", facts)
        out = Text()
        for note in plan.notes:
            out.append_text(status_text(note.status, note.message))
            out.append("\n")
            if note.detail:
                out.append_text(diff_text(note.detail))
        for change in plan.changes:
            out.append(f"will {change.summary()}:\n", style="bold")
            out.append_text(diff_text(change.detail()))
        box.update(out)
        self.wizard.mark(self.NAME, "failed" if plan.failed else "current")

    def changed(self, spec: FieldSpec) -> None:
        if spec.path[-1] in PROBED and (self.facts is not None or self.probing):
            # a result for other settings would mislead: say so, and let the operator test again
            self.facts, self.probing = None, False
            self.probe_id += 1  # what the probe in flight brings back is for the old settings
            self.query_one("#probe", Static).update(Text("settings changed — Test connection again (ctrl+t)", style="dim"))
            if self.wizard.statuses.get(self.NAME) == "failed":
                self.wizard.mark(self.NAME, "")
        elif self.facts is not None:
            self.render_probe()  # on_existing and friends: same facts, new verdict

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "test":
            event.stop()
            self.action_test()
            return
        super().on_button_pressed(event)


PAGE = EtcdPage
