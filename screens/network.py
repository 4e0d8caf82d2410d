"""Network: flannel's Network, SubnetLen (SubnetMin/Max under "advanced"), the dual-stack keys (under
"IPv6 / dual-stack"), the service CIDR and the backend with only its own options. Checked as you type:
flannel's own error texts, overlaps with this node's addresses and routes, capacity, and the MTU the
backend will give."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Collapsible, Select, Static

from screens.base import StepScreen
from screens.widgets import FieldRow, FieldSpec, set_text, status_text

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.steps import Plan
    from wizard.steps.network import Facts

BACKENDS = ("vxlan", "host-gw", "udp", "ipip", "wireguard", "ipsec")
BACKEND_HELP = {
    "vxlan": "kernel VXLAN on UDP 8472; works across subnets; MTU − 50",
    "host-gw": "plain routes to other nodes; fastest; nodes must share one L2 network",
    "udp": "flanneld encapsulates in user space (UDP 8285); slow, for debugging",
    "ipip": "kernel IP-in-IP; MTU − 20",
    "wireguard": "encrypted tunnels; MTU − 80",
    "ipsec": "kernel IPsec, keys by strongSwan's charon (UDP 500, 4500); PSK of 96+ characters; MTU − 77",
}


def _opt(backend: str, name: str, label: str, kind: str = "int", **kw: Any) -> FieldSpec:
    return FieldSpec(("network", "backend", name), label, kind, optional=True, key=backend, **kw)


BACKEND_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "vxlan": (
        _opt("vxlan", "vni", "VNI", placeholder="1"),
        _opt("vxlan", "port", "UDP port", placeholder="0 = kernel default 8472"),
        _opt("vxlan", "mtu", "MTU", placeholder="auto"),
        _opt("vxlan", "direct_routing", "DirectRouting", "bool"),
        _opt("vxlan", "gbp", "GBP", "bool"),
        _opt("vxlan", "learning", "Learning", "bool"),
    ),
    "host-gw": (),
    "udp": (_opt("udp", "port", "UDP port", placeholder="8285"),),
    "ipip": (_opt("ipip", "direct_routing", "DirectRouting", "bool"),),
    "wireguard": (
        _opt("wireguard", "psk_env", "PSK env var", "str", placeholder="none"),
        _opt("wireguard", "psk_file", "PSK file", "str", placeholder="none"),
        _opt("wireguard", "listen_port", "Listen port", placeholder="51820"),
        _opt("wireguard", "listen_port_v6", "Port IPv6", placeholder="51821"),
        _opt("wireguard", "mtu", "MTU", placeholder="auto"),
        _opt("wireguard", "persistent_keepalive_interval", "Keepalive (s)", placeholder="0"),
    ),
    "ipsec": (
        _opt("ipsec", "psk_env", "PSK env var", "str", placeholder="none"),
        _opt("ipsec", "psk_file", "PSK file", "str", placeholder="none"),
        _opt("ipsec", "udp_encap", "UDPEncap", "bool"),
        _opt("ipsec", "esp_proposal", "ESPProposal", "str", placeholder="aes128gcm16-sha256-prfsha256-ecp256"),
    ),
}
MAIN = (
    FieldSpec(("network", "cidr"), "Network", placeholder="172.30.0.0/16", help="all pod addresses of the cluster"),
    FieldSpec(("network", "subnet_len"), "SubnetLen", "int", optional=True, placeholder="24",
              help="each node leases one subnet of this size"),
    FieldSpec(("network", "service_cidr"), "Service CIDR", optional=True, placeholder="10.254.0.0/16",
              help="kube-apiserver's --service-cluster-ip-range"),
)
ADVANCED = (
    FieldSpec(("network", "subnet_min"), "SubnetMin", optional=True, placeholder="the second subnet"),
    FieldSpec(("network", "subnet_max"), "SubnetMax", optional=True, placeholder="the last subnet"),
)
DUAL_STACK = (
    FieldSpec(("network", "enable_ipv6"), "EnableIPv6", "bool"),
    FieldSpec(("network", "ipv6_cidr"), "IPv6Network", optional=True, placeholder="fc00::/48"),
    FieldSpec(("network", "ipv6_subnet_len"), "IPv6SubnetLen", "int", optional=True, placeholder="64"),
    FieldSpec(("network", "ipv6_subnet_min"), "IPv6SubnetMin", optional=True, placeholder="the second subnet"),
    FieldSpec(("network", "ipv6_subnet_max"), "IPv6SubnetMax", optional=True, placeholder="the last subnet"),
    FieldSpec(("network", "enable_ipv4"), "EnableIPv4", "bool"),
)
TYPE = FieldSpec(("network", "backend", "type"), "Backend", "select", options=tuple((b, b) for b in BACKENDS))


class NetworkPage(StepScreen):
    NAME = "network"
    HEADING = "Network — flannel's address plan and backend"
    SECTION = ("network",)
    FIELDS = (*MAIN, *ADVANCED, *DUAL_STACK, TYPE, *(f for fields in BACKEND_FIELDS.values() for f in fields))

    facts: Facts | None = None

    def body(self) -> ComposeResult:
        # one line above the fields: the checks' verdict stays in view at 80x24 while typing
        yield Static("", id="verdict")
        yield Static("", id="section-problems", classes="problems")
        get = self.session.get
        for spec in MAIN:
            yield FieldRow(spec, get(spec.path))
        with Collapsible(title="advanced: SubnetMin / SubnetMax", collapsed=not any(get(s.path) for s in ADVANCED),
                         id="advanced"):
            for spec in ADVANCED:
                yield FieldRow(spec, get(spec.path))
        # open when the answers already ask for something other than IPv4 alone
        single = get(("network", "enable_ipv4")) is not False and not any(get(s.path) for s in DUAL_STACK[:-1])
        with Collapsible(title="IPv6 / dual-stack", collapsed=single, id="dual-stack"):
            for spec in DUAL_STACK:
                yield FieldRow(spec, get(spec.path))
        current = get(TYPE.path) or "vxlan"
        yield FieldRow(TYPE, current)
        yield Static(BACKEND_HELP.get(current, ""), id="backend-help", classes="field-help")
        for backend, fields in BACKEND_FIELDS.items():
            with Vertical(id=f"opts-{backend}", classes="backend-opts") as box:
                box.display = backend == current
                for spec in fields:
                    value = get(spec.path) if backend == current else None
                    yield FieldRow(spec, value)
        yield Static("", id="checks")

    _plan: tuple[str, Facts, Plan] | None = None  # the last plan, with the answers and facts it was made for

    def on_mount(self) -> None:
        self.remembered: dict[str, dict[str, Any]] = {}
        self.checks_box = self.query_one("#checks", Static)
        self.verdict_line = self.query_one("#verdict", Static)
        super().on_mount()
        self.read_facts()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == TYPE.id and event.value != self.session.get(TYPE.path):
            self.switch_backend(str(event.value))
        super().on_select_changed(event)

    def switch_backend(self, new: str) -> None:
        # each backend keeps what was typed for it, so looking at another one and back loses nothing
        old = dict(self.session.get(("network", "backend")) or {})
        self.remembered[str(old.pop("type", ""))] = old
        self.session.draft["network"]["backend"] = {"type": new, **self.remembered.get(new, {})}
        for backend in BACKEND_FIELDS:
            self.query_one(f"#opts-{backend}").display = backend == new
        self.query_one("#backend-help", Static).update(BACKEND_HELP.get(new, ""))

    def show_problems(self) -> None:
        # every edit comes through here, so the checks are redrawn once per keystroke
        super().show_problems()
        self.show_checks()

    def show_facts(self) -> None:
        self.show_checks()

    def plan(self) -> Plan:
        """The network step's plan for the facts and the answers as they are now, made once for both the
        checks and Next: it is pure, so the same answers and facts give the same plan."""
        assert self.facts is not None
        draft = repr(self.session.draft)
        if self._plan is None or self._plan[0] != draft or self._plan[1] is not self.facts:
            self._plan = (draft, self.facts, self.session.plan("network", self.facts))
        return self._plan[2]

    def show_checks(self) -> None:
        if not hasattr(self, "checks_box"):
            return  # not mounted yet
        out = Text("Checks against this node\n", style="bold")
        verdict = Text("")
        if self.problems_under(("network",)):
            out.append("waiting for the values above to be valid\n", style="dim")
            verdict = Text("✗ fix the values marked below", style="red")
        elif self.facts is None:
            out.append("reading this node's addresses and routes…\n", style="dim")
            verdict = Text("… reading this node's addresses and routes", style="dim")
        else:
            notes = self.plan().notes
            for note in notes:
                out.append_text(status_text(note.status, note.message, note.detail))
                out.append("\n")
            worst = next((n for n in notes if n.status == "failed"), None) or next(
                (n for n in notes if n.status == "warn"), None)
            if worst is not None:
                verdict = status_text(worst.status, worst.message)
            else:
                verdict = status_text("ok", f"all {len(notes)} checks against this node pass (details below)")
        # keep_height: the checks shrink to one line while the values are invalid, and grow back when
        # they are valid again; kept at their tallest, the page is laid out once per key, not twice
        set_text(self.checks_box, out, keep_height=True)
        set_text(self.verdict_line, verdict, keep_height=True)

    def blocked(self) -> str:
        reason = super().blocked()
        if reason or self.facts is None:
            return reason
        failed = [n for n in self.plan().notes if n.status == "failed"]
        return f"{failed[0].message} — {failed[0].detail}" if failed else ""


PAGE = NetworkPage
