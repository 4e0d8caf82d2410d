"""etcd: where flannel's config lives. "Test connection" runs in a worker and shows the cluster
version, the PREFIX/config already there (with a diff against what will be written) and the leases."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.widgets import Button, Static

from screens.base import StepScreen
from screens.widgets import FieldSpec, diff_text

if TYPE_CHECKING:
    from textual.app import ComposeResult


@dataclass
class Probe:
    endpoint: str = ""
    version: str = ""
    config: str | None = None
    wanted: str = ""
    leases: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    fix: str = ""


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
        FieldSpec(("etcd", "api"), "API", "select", options=(("v3 (flanneld ≥ 0.18)", "v3"), ("v2 keys API", "v2"))),
        FieldSpec(("etcd", "on_existing"), "If a config exists", "select",
                  options=(("stop and show the diff", "fail"), ("keep it", "keep"), ("replace it", "replace"))),
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

    def body(self) -> ComposeResult:
        yield from super().body()
        yield Button("Test connection", id="test", compact=True)
        yield Static("", id="probe")

    def action_test(self) -> None:
        from wizard.answers import Etcd

        if self.session.problems_under(("etcd",)):
            self.query_one("#probe", Static).update(Text("fix the problems above first", style="red"))
            return
        self.probing = True
        self.query_one("#probe", Static).update(f"connecting to {', '.join(self.session.get(('etcd', 'endpoints')) or [])} …")
        self.probe(Etcd.model_validate(self.session.draft["etcd"]))

    @work(thread=True, exclusive=True, group="etcd-probe")
    def probe(self, settings: object) -> None:
        from wizard import flannel
        from wizard.errors import WizardError

        result = Probe()
        answers = self.session.partial()
        try:
            result.wanted = flannel.to_json(flannel.redacted(answers.network.flannel_config(secrets=False)))
            store = self.session.node.etcd(settings, answers.etcd_password())  # type: ignore[arg-type]
            try:
                result.endpoint = store.endpoint
                result.version = store.version()
                found = store.get(answers.etcd.prefix + "/config")
                result.config = found[0] if found else None
                result.leases = store.list(answers.etcd.prefix + "/subnets/")
            finally:
                store.close()
        except WizardError as exc:
            result.error, result.fix = exc.what, exc.fix
        except OSError as exc:
            result.error, result.fix = f"cannot connect: {exc}", "check the endpoints and the TLS files"
        self.app.call_from_thread(self.show_probe, result)

    def show_probe(self, result: Probe) -> None:
        from wizard import flannel
        from wizard.changes import json_diff

        self.probing = False
        box = self.query_one("#probe", Static)
        if result.error:
            box.update(Text(f"✗ {result.error}\n  {result.fix}", style="red"))
            self.wizard.mark(self.NAME, "failed")
            return
        prefix = self.session.get(("etcd", "prefix"))
        out = Text()
        out.append(f"✓ etcd {result.version} at {result.endpoint}\n", style="green")
        if result.config is None:
            out.append(f"{prefix}/config is absent; the wizard will create it:\n")
            out.append(result.wanted + "\n")
        else:
            try:
                current = flannel.to_json(flannel.redacted(json.loads(result.config)))
            except ValueError:
                current = result.config
            out.append(f"{prefix}/config already holds:\n")
            out.append(current + "\n")
            if current == result.wanted:
                out.append("which is what the answers say — nothing to write\n", style="green")
            else:
                out.append("the answers differ:\n", style="yellow")
                out.append_text(diff_text(json_diff(current, result.wanted, f"{prefix}/config")))
        out.append(f"{len(result.leases)} lease(s) taken under {prefix}/subnets/\n")
        for key, value in result.leases:
            try:
                public = json.loads(value).get("PublicIP", "?")
            except ValueError:
                public = "?"
            out.append(f"  {flannel.lease_subnet(key)} → {public}\n")
        box.update(out)
        self.wizard.mark(self.NAME, "current")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "test":
            event.stop()
            self.action_test()
            return
        super().on_button_pressed(event)


PAGE = EtcdPage
