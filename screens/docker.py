"""Docker bridge: docker0 as it is beside what it becomes, the opts file options with a live
preview of the exact file mk-docker-opts.sh would write, and daemon.json on or off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.containers import Horizontal
from textual.widgets import Static, Switch

from screens.base import StepScreen
from screens.widgets import FieldRow, FieldSpec

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.node.linkinfo import LinkInfo

DAEMON_JSON_DEFAULT = "/etc/docker/daemon.json"
DAEMON_JSON = FieldSpec(("docker", "daemon_json"), "daemon.json path", optional=True, placeholder="off")
USE_DAEMON_JSON = FieldSpec(("docker", "use_daemon_json"), "Merge daemon.json", "bool",
                            help="bip and mtu into daemon.json, every other key kept; off if docker.service passes $DOCKER_OPTS")


class DockerPage(StepScreen):
    NAME = "docker"
    HEADING = "Docker bridge — docker0 onto flannel's subnet"
    SECTION = ("docker",)
    FIELDS = (
        FieldSpec(("docker", "bridge"), "Bridge", placeholder="docker0"),
        FieldSpec(("docker", "opts_file"), "Opts file", placeholder="/run/docker_opts.env"),
        FieldSpec(("docker", "opts", "individual"), "Individual (-i)", "bool", help="DOCKER_OPT_BIP=…, DOCKER_OPT_MTU=…"),
        FieldSpec(("docker", "opts", "combined"), "Combined (-c)", "bool", help='DOCKER_OPTS=" --bip=… --mtu=…"'),
        FieldSpec(("docker", "opts", "combined_key"), "Combined key (-k)", placeholder="DOCKER_OPTS"),
        FieldSpec(("docker", "opts", "ip_masq"), "--ip-masq (not -m)", "bool"),
        DAEMON_JSON,
        FieldSpec(("docker", "service"), "Service", placeholder="docker"),
    )

    bridge: LinkInfo | None = None
    subnet_env: dict[str, str] | None = None
    iface_mtu: int = 1500
    inspected = False

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
        self.inspect_node()

    @work(thread=True, exclusive=True, group="docker-facts")
    def inspect_node(self) -> None:
        from wizard.errors import WizardError
        from wizard.steps.flanneld import read_subnet_env

        answers = self.session.partial()
        ctx = self.session.context(answers, lambda e: None, dry_run=True)
        try:
            links = self.session.node.links
            bridge = links.link(answers.docker.bridge)
            iface = answers.flanneld.iface
            info = links.link(iface) if iface else None
            mtu = info.mtu if info else links.default_mtu()
            env = read_subnet_env(ctx)
        except (WizardError, OSError) as exc:
            self.app.call_from_thread(self.notify, f"cannot read docker0: {exc}", severity="error")
            return
        self.app.call_from_thread(self._got_facts, bridge, env, mtu or 1500)

    def _got_facts(self, bridge: LinkInfo | None, env: dict[str, str] | None, mtu: int) -> None:
        self.bridge, self.subnet_env, self.iface_mtu, self.inspected = bridge, env, mtu, True
        self.preview()

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

    def _planned_env(self) -> tuple[dict[str, str], str]:
        """subnet.env as flanneld wrote it, or as it will write it for the first free lease."""
        from wizard import flannel

        if self.subnet_env:
            return self.subnet_env, "from flanneld's subnet file"
        answers = self.session.partial()
        cfg = answers.network.flannel_config(secrets=False)
        rng = flannel.subnet_range(cfg)
        mtu = flannel.backend_mtu(cfg["Backend"], self.iface_mtu)
        env = {"FLANNEL_NETWORK": str(rng.network), "FLANNEL_SUBNET": f"{rng.first + 1}/{rng.subnet_len}",
               "FLANNEL_MTU": str(mtu), "FLANNEL_IPMASQ": "true" if answers.flanneld.ip_masq else "false"}
        return env, f"example: flanneld picks the free /{rng.subnet_len} when it takes its lease"

    def preview(self) -> None:
        from wizard import flannel
        from wizard.errors import WizardError

        answers = self.session.partial()
        name = answers.docker.bridge
        now = Text(f"{name} now\n", style="bold")
        if not self.inspected:
            now.append("reading…")
        elif self.bridge is None:
            now.append("does not exist yet (docker creates it)")
        else:
            now.append(f"{', '.join(self.bridge.ipv4) or 'no IPv4 address'}\nMTU {self.bridge.mtu}")
        self.query_one("#bridge-now", Static).update(now)
        try:
            env, source = self._planned_env()
        except (flannel.ConfigProblem, ValueError):
            self.query_one("#bridge-then", Static).update("fix the Network page first")
            return
        then = Text(f"{name} after\n", style="bold")
        then.append(f"{env['FLANNEL_SUBNET']}\nMTU {env['FLANNEL_MTU']}\n")
        then.append(source, style="dim")
        self.query_one("#bridge-then", Static).update(then)
        out = Text(f"{answers.docker.opts_file}, exactly:\n", style="bold")
        if self.session.problems_under(("docker",)):
            out.append("fix the problems above to see the file", style="dim")
        else:
            opts = answers.docker.opts
            try:
                out.append(flannel.mk_docker_opts(env, opts.individual, opts.combined, opts.combined_key, opts.ip_masq))
            except WizardError as exc:
                out.append(f"✗ {exc}", style="red")
        if answers.docker.daemon_json:
            out.append(f"\n{answers.docker.daemon_json} gets \"bip\": \"{env['FLANNEL_SUBNET']}\", "
                       f"\"mtu\": {env['FLANNEL_MTU']}; its other keys stay", style="dim")
        self.query_one("#opts-preview", Static).update(out)


PAGE = DockerPage
