"""network: the flannel config checked against flannel's rules and this node's addresses and routes.

It changes nothing itself; the etcd step writes the config it approved.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wizard import flannel
from wizard.steps import Plan, Step

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.linkinfo import LinkInfo, Route
    from wizard.node.links import Links
    from wizard.steps import Context


@dataclass
class Facts:
    addresses: list[tuple[str, str]]
    routes: list[Route]
    bridge: LinkInfo | None
    iface: str
    iface_mtu: int
    iface_found: bool = True  # False: flanneld.iface is on no link here, and iface_mtu is only assumed
    flanneld_version: tuple[int, int, int] | None = None  # from `flanneld --version`; None: not known


def _flannel_device(dev: str | None, bridge: str) -> bool:
    return bool(dev) and (dev == bridge or dev.startswith("flannel") or dev in ("cni0", "flannel-wg"))


def iface_mtu(links: Links, iface: str) -> tuple[str, int, bool]:
    """The device flanneld will use, its MTU, and whether it was found, the way flanneld picks it: `iface`
    as a link name, or as an address the link that holds it (flannel's GetInterfaceByIP), else the default
    route's device; 1500 (not found) when none can be read."""
    if not iface:
        mtu = links.default_mtu()
        return "the default route's device", mtu or 1500, True  # no default route: flanneld says so itself
    info = links.link(iface)
    if info is None:
        try:
            wanted = ipaddress.ip_address(iface)
        except ValueError:
            return iface, 1500, False
        name = next((dev for dev, cidr in links.addresses() if ipaddress.ip_interface(cidr).ip == wanted), None)
        info = links.link(name) if name else None
        if info is None:
            return iface, 1500, False
        iface = f"{info.name} ({iface})"
    return iface, info.mtu or 1500, bool(info.mtu)


def inspect(ctx: Context) -> Facts:
    links = ctx.node.links
    iface, mtu, found = iface_mtu(links, ctx.answers.flanneld.iface)
    release = ctx.etcd_api().release  # asked once per run; the etcd step uses the same answer
    return Facts(links.addresses(), links.routes(), links.link(ctx.answers.docker.bridge), iface, mtu, found, release)


def plan(answers: Answers, facts: Facts) -> Plan:
    result = Plan()
    cfg = answers.network.flannel_config(secrets=False)
    rng = flannel.subnet_range(cfg)  # the answers were validated against the same rules
    net = rng.network
    bridge = answers.docker.bridge

    def ours(dev: str | None, cidr: ipaddress.IPv4Network, gateway: str | None = None) -> bool:
        # what a previous run set up: flannel's own devices inside Network, the bridge on this node's
        # lease, and host-gw routes to other nodes' leases. A lease-sized network on any other device
        # (eth0 on 192.168.56.0/24 inside 192.168.0.0/16) is the host's own, and a real overlap.
        if not cidr.subnet_of(net):
            return False
        if _flannel_device(dev, bridge) and dev != bridge:
            return True
        return cidr.prefixlen == rng.subnet_len and (dev == bridge or gateway is not None)

    for dev, cidr in facts.addresses:
        iface_net = ipaddress.IPv4Network(cidr, strict=False)
        if dev == "lo" or not iface_net.overlaps(net) or ours(dev, iface_net):
            continue
        if dev == bridge:
            result.note("failed", f"{bridge} is on {iface_net}, which overlaps the flannel network {net}",
                        f"docker0 and flannel must not share a range: choose another network.cidr than {iface_net}")
        else:
            result.note("failed", f"flannel network {net} overlaps {cidr} on {dev}",
                        "pods would shadow this host's own network: choose another network.cidr")
    connected = {(dev, ipaddress.IPv4Network(cidr, strict=False)) for dev, cidr in facts.addresses}
    for route in facts.routes:
        if route.dst.prefixlen == 0 or not route.dst.overlaps(net) or ours(route.dev, route.dst, route.gateway):
            continue
        if (route.dev, route.dst) in connected:
            continue  # the connected route of an address already reported
        result.note("failed", f"flannel network {net} overlaps the route {route}",
                    "traffic to pods would leave through that route: choose another network.cidr")
    if facts.flanneld_version is not None:  # refused here, before etcd holds a config flanneld cannot run
        for what, fix in flannel.not_in_release(cfg, facts.flanneld_version):
            result.note("failed", what, fix)
    if result.failed:
        return result
    result.note(
        "ok",
        f"{net}: {rng.count} node subnets /{rng.subnet_len} ({rng.first} … {rng.last}), "
        f"{rng.addresses_per_subnet} pod addresses each",
    )
    v6 = flannel.check_config(cfg).v6
    if v6 is not None:
        result.note("ok", f"{v6.network}: {v6.count} node IPv6 subnets /{v6.subnet_len} ({v6.first} … {v6.last})")
        # the docker step writes what mk-docker-opts.sh writes, and the script reads no FLANNEL_IPV6_* key
        result.note("warn", "docker0 gets no IPv6 address: mk-docker-opts.sh passes on FLANNEL_SUBNET and "
                    "FLANNEL_MTU only, not FLANNEL_IPV6_SUBNET",
                    "IPv6 pod addresses come from a CNI config (flannel's CNI plugin reads FLANNEL_IPV6_SUBNET), "
                    "or set docker's fixed-cidr-v6 to this node's FLANNEL_IPV6_SUBNET yourself")
    result.note(*_mtu_note(cfg["Backend"], facts))
    if answers.network.service_cidr:
        result.note("ok", f"service CIDR {answers.network.service_cidr} does not overlap")
    return result


def _mtu_note(backend: dict[str, Any], facts: Facts) -> tuple[str, str, str]:
    """FLANNEL_MTU as the backend computes it, and how: Backend.MTU is the underlay's MTU for vxlan and
    wireguard (flannel takes the overhead off it), the interface's MTU for every backend otherwise."""
    kind = str(backend["Type"])
    mtu = flannel.backend_mtu(backend, facts.iface_mtu)
    underlay = backend.get("MTU") if kind in ("vxlan", "wireguard") else None
    overhead = (underlay or facts.iface_mtu) - mtu
    source = f"Backend.MTU {underlay}" if underlay else f"MTU {facts.iface_mtu} of {facts.iface}"
    how = f"{source} − {overhead} for {kind}" if overhead else f"{source}, {kind} adds no header"
    if not facts.iface_found and not underlay:
        # flanneld.iface names no link (the flanneld step and preflight say so): the MTU is a guess
        return ("warn", f"FLANNEL_MTU would be {mtu} ({how}), but {facts.iface} is not a link or an address of "
                "this node, so its MTU is unknown", "set flanneld.iface to one of this node's interfaces or "
                "addresses (ip -br addr), or leave it empty for the default route's")
    if underlay and underlay > facts.iface_mtu:
        # the wizard's own finding: flannel sets what it is told, and the kernel then drops or fragments
        return ("warn", f"FLANNEL_MTU will be {mtu} ({how}), but {facts.iface} carries only {facts.iface_mtu}",
                f"packets of the full pod MTU would not fit {facts.iface}: lower network.backend.mtu to at most "
                f"{facts.iface_mtu}, or leave it null")
    return ("ok", f"FLANNEL_MTU will be {mtu} ({how})", "")


STEP = Step("network", "checking the flannel network against this node", inspect, plan, makes_changes=False)
