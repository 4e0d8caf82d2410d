"""preflight: kubeadm-style named checks of the node before anything changes. Changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wizard import flannel, runtimes
from wizard.steps import Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.steps import Context


@dataclass(frozen=True)
class Finding:
    name: str
    severity: str  # "ERROR" or "WARNING"
    ok: bool
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Facts:
    findings: list[Finding]
    ignore: frozenset[str]  # names (lower case) the operator chose to go on past; "all" for every one


def findings(ctx: Context) -> list[Finding]:
    answers, node = ctx.answers, ctx.node
    kernel = node.kernel
    out: list[Finding] = []
    out.append(Finding("IsPrivilegedUser", "ERROR", kernel.is_root(), "user is not running as root", "run as root (sudo)"))
    iface = answers.flanneld.iface
    if iface:
        # flanneld exits at start with a missing -iface; found here, before anything changes, not at smoke sub-step 7
        names = sorted(name for name, _cidr in node.links.addresses() if name != "lo")
        # -iface takes an address too: then it must be one of this node's
        present = node.links.link(iface) is not None or any(c.split("/")[0] == iface for _n, c in node.links.addresses())
        out.append(Finding(f"Interface-{iface}", "ERROR", present,
                           f"flanneld.iface {iface} does not exist on this node",
                           f"set flanneld.iface to the interface other nodes reach this one on "
                           f"({', '.join(dict.fromkeys(names)) or 'none has an address'}), or leave it empty "
                           "for the default route's"))
    runtime = runtimes.runtime(node, answers)
    binaries = [("flanneld", "ERROR"), (runtimes.DAEMONS[runtime], "ERROR"), ("kubelet", "ERROR"),
                ("kubectl", "ERROR" if answers.smoke_test.enabled else "WARNING"), ("iptables-save", "ERROR"),
                ("systemctl", "WARNING")]
    for binary, severity in binaries:
        out.append(Finding(f"FileExisting-{binary}", severity, node.commands.which(binary) is not None,
                           f"{binary} not found in system path", f"install {binary} or put it on PATH"))
    backend = answers.network.backend.type
    modules = ["br_netfilter"] + (["vxlan"] if backend == "vxlan" else []) + (["ipip"] if backend == "ipip" else [])
    for module in modules:
        out.append(Finding(f"KernelModule-{module}", "ERROR", kernel.module_loaded(module),
                           f"kernel module {module} is not loaded", f"modprobe {module}"))
    for key, name in (("net/ipv4/ip_forward", "FileContent--proc-sys-net-ipv4-ip_forward"),
                      ("net/bridge/bridge-nf-call-iptables", "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables")):
        value = kernel.sysctl(key)
        dotted = key.replace("/", ".")
        if value is None:
            out.append(Finding(name, "ERROR", False, f"/proc/sys/{key} does not exist", "modprobe br_netfilter"))
        else:
            out.append(Finding(name, "ERROR", value == "1", f"/proc/sys/{key} contents are not set to 1",
                               f"sysctl -w {dotted}=1 (and persist it in /etc/sysctl.d/)"))
    swaps = kernel.swaps()
    out.append(Finding("Swap", "WARNING", not swaps, "swap is enabled; kubelet refuses to start with swap on by default",
                       "swapoff -a and remove swap from /etc/fstab"))
    net = answers.network
    # every UDP port the backend listens on: vxlan's, udp's, wireguard's ListenPort and (IPv6 in separate
    # mode) ListenPortV6, ipsec's IKE ports 500 and 4500 (charon's, which flanneld starts)
    for port in flannel.udp_ports(net.flannel_config(secrets=False)["Backend"], net.enable_ipv4, net.enable_ipv6):
        # the node's test binds the port for IPv4: a kernel wireguard device binds its port for both
        # families, so another one on ListenPortV6 is seen; a program holding a port for IPv6 alone is not
        free = kernel.udp_port_free(port.port)
        ours = next((d for d in port.devices if node.links.link(d) is not None), None)
        free = free or ours is not None  # flannel's own device from an earlier run already holds it
        name, what = f"Port-{port.port}", f"UDP port {port.port} ({port.what})"
        if port.flannels:
            out.append(Finding(name, "ERROR", free, f"{what} is in use by another program",
                               f"free UDP port {port.port} or choose another backend port"))
        else:
            # flannel's code opens no socket here and cannot tell its own charon from another IKE daemon
            out.append(Finding(name, "WARNING", free, f"{what} is in use: by flanneld's own charon if flanneld "
                               "already runs the ipsec backend, else by another IKE daemon, and then flanneld's "
                               "charon cannot start",
                               f"`ss -ulpn sport = :{port.port}` shows who holds it; stop a strongswan/libreswan "
                               "service there"))
    return out


def inspect(ctx: Context) -> Facts:
    return Facts(findings(ctx), ctx.ignore_preflight)


def plan(answers: Answers, facts: Facts) -> Plan:
    return plan_findings(facts.findings, facts.ignore)


@dataclass(frozen=True)
class Output:
    blocking: list[str]  # errors that stop an apply
    ignored: list[str]  # errors the operator goes on past


def plan_findings(found: list[Finding], ignore: frozenset[str]) -> Plan:
    result = Plan()
    bad = [f for f in found if not f.ok]
    blocking, passed = [], []
    for f in bad:
        ignored = "all" in ignore or f.name.lower() in ignore
        if f.severity == "ERROR":
            (passed if ignored else blocking).append(f.name)
        if f.severity == "ERROR" and not ignored:
            result.note("failed", f"[ERROR {f.name}]: {f.message}", f.fix)
        else:
            tag = "ERROR" if f.severity == "ERROR" else "WARNING"
            suffix = " (ignored)" if f.severity == "ERROR" else ""
            result.note("warn", f"[{tag} {f.name}]: {f.message}{suffix}", f.fix)
    result.note("ok", f"{len(found) - len(bad)} of {len(found)} checks passed")
    result.output = Output(blocking, passed)
    return result


STEP = Step("preflight", "checking the node", inspect, plan, makes_changes=False)
