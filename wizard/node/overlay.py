"""The overlay as this node's kernel holds it (through pyroute2, on the node's netlink connection), and
the probes the mesh step sends across it."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from wizard.node import netlink
from wizard.node.meshinfo import (
    FdbEntry,
    Neighbour,
    Overlay,
    OverlayRoute,
    Probe,
    ProbeResult,
    VxlanDevice,
)
from wizard.node.probes import send

netlink.light()  # before the first pyroute2 import: only the rtnetlink part of the library loads
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

if TYPE_CHECKING:
    from wizard.node.links import Links

NUD_PERMANENT = 0x80
RTNH_F_ONLINK = 4
MAIN_TABLE = 254


class RealMesh:
    def __init__(self, links: Links) -> None:
        self.links = links

    def overlay(self, device: str | None) -> Overlay:
        ipr = self.links.ipr
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
        routes = []
        for r in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
            dst = r.get_attr("RTA_DST") or "0.0.0.0"
            routes.append(OverlayRoute(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False),
                                       r.get_attr("RTA_GATEWAY"), names.get(r.get_attr("RTA_OIF")),
                                       bool(r["flags"] & RTNH_F_ONLINK)))
        index = next((i for i, n in names.items() if n == device), None) if device else None
        if index is None:
            return Overlay(None, tuple(routes), (), ())
        msg = ipr.get_links(index)[0]
        info = msg.get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        kind = info.get_attr("IFLA_INFO_KIND") if info else ""
        addrs = tuple(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                      for a in ipr.get_addr(family=socket.AF_INET, index=index))
        vxlan = kind == "vxlan" and data is not None
        dev = VxlanDevice(
            device, data.get_attr("IFLA_VXLAN_ID") if vxlan else None, data.get_attr("IFLA_VXLAN_PORT") if vxlan else None,
            data.get_attr("IFLA_VXLAN_LOCAL") if vxlan else None, bool(data.get_attr("IFLA_VXLAN_LEARNING")) if vxlan else False,
            msg.get_attr("IFLA_MTU"), msg.get_attr("IFLA_ADDRESS") or "", bool(msg["flags"] & 1), addrs)
        neighbours = tuple(Neighbour(n.get_attr("NDA_DST"), n.get_attr("NDA_LLADDR"), bool(n["state"] & NUD_PERMANENT))
                           for n in ipr.get_neighbours(ifindex=index, family=socket.AF_INET))
        fdb = tuple(FdbEntry(n.get_attr("NDA_LLADDR") or "", n.get_attr("NDA_DST"))
                    for n in ipr.get_neighbours(ifindex=index, family=socket.AF_BRIDGE))
        return Overlay(dev, tuple(routes), neighbours, fdb)

    def probe(self, probes: list[Probe], timeout: float) -> list[ProbeResult]:
        return send(probes, timeout)

    def gateway_to(self, address: str) -> str | None:
        try:
            found = self.links.ipr.route("get", dst=address)
        except NetlinkError:
            return ""  # no route at all
        return found[0].get_attr("RTA_GATEWAY") if found else ""
