"""flanneld: the interface it uses, IP masquerading, and its environment file, with the lines the
wizard will write shown as you type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from screens.base import StepScreen
from screens.widgets import FieldSpec

if TYPE_CHECKING:
    from textual.app import ComposeResult


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

    def on_mount(self) -> None:
        super().on_mount()
        self.preview()

    def changed(self, spec: FieldSpec) -> None:
        self.preview()

    def preview(self) -> None:
        from wizard import envfile
        from wizard.steps import flanneld

        answers = self.session.partial()
        ctx = self.session.context(answers, lambda e: None, dry_run=True)
        lines = envfile.update(None, {
            "FLANNEL_ETCD_ENDPOINTS": ",".join(answers.etcd.endpoints),
            "FLANNEL_ETCD_PREFIX": answers.etcd.prefix,
            "FLANNEL_OPTIONS": flanneld.options(ctx),
        })
        out = Text(f"{answers.flanneld.env_file} will say (other lines kept):\n", style="bold")
        out.append(lines)
        self.query_one("#env-preview", Static).update(out)


PAGE = FlanneldPage
