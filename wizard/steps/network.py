"""network: the flannel config checked against flannel's rules and this node's addresses and routes.

It changes nothing itself; the etcd step writes the config it approved.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def _flannel_device(dev: str | None, bridge: str) -> bool:
    return bool(dev) and (dev == bridge or dev.startswith("flannel") or dev in ("cni0", "flannel-wg"))


def iface_mtu(links: Links, iface: str) -> tuple[str, int]:
    """The device flanneld will use and its MTU, the way flanneld picks it: `iface`, else the default
    route's device; 1500 when neither can be read."""
    if iface:
        info = links.link(iface)
        return iface, (info.mtu if info else None) or 1500
    return "the default route's device", links.default_mtu() or 1500


def inspect(ctx: Context) -> Facts:
    links = ctx.node.links
    iface, mtu = iface_mtu(links, ctx.answers.flanneld.iface)
    return Facts(links.addresses(), links.routes(), links.link(ctx.answers.docker.bridge), iface, mtu)


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
    mtu = flannel.backend_mtu(cfg["Backend"], facts.iface_mtu)
    if result.failed:
        return result
    result.note(
        "ok",
        f"{net}: {rng.count} node subnets /{rng.subnet_len} ({rng.first} … {rng.last}), "
        f"{rng.addresses_per_subnet} pod addresses each",
    )
    result.note("ok", f"FLANNEL_MTU will be {mtu} ({cfg['Backend']['Type']} on {facts.iface}, MTU {facts.iface_mtu})")
    if answers.network.service_cidr:
        result.note("ok", f"service CIDR {answers.network.service_cidr} does not overlap")
    return result


STEP = Step("network", "checking the flannel network against this node", inspect, plan, makes_changes=False)
