"""Links, addresses and routes of the current network namespace, through pyroute2 (netlink)."""

from __future__ import annotations

import ipaddress
import socket

from wizard.errors import WizardError
from wizard.node import netlink
from wizard.node.linkinfo import LinkInfo, Route, default_mtu

netlink.light()  # before the first pyroute2 import: only the rtnetlink part of the library loads
from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["LinkInfo", "Links", "Route"]

MAIN_TABLE = 254


class Links:
    def __init__(self) -> None:
        self.ipr = IPRoute()
        self._names: dict[int, str] | None = None

    def close(self) -> None:
        self.ipr.close()

    def _name_of(self, index: int | None) -> str | None:
        if self._names is None:
            self._names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in self.ipr.get_links()}
        return self._names.get(index) if index is not None else None

    def link(self, name: str) -> LinkInfo | None:
        found = self.ipr.link_lookup(ifname=name)
        if not found:
            return None
        index = found[0]
        msg = self.ipr.get_links(index)[0]
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else ""
        addrs = tuple(
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in self.ipr.get_addr(family=socket.AF_INET, index=index)
        )
        return LinkInfo(name, index, msg.get_attr("IFLA_MTU"), kind or "", addrs)

    def addresses(self) -> list[tuple[str, str]]:
        """(device, address/prefix) for every IPv4 address in this namespace."""
        return [
            (self._name_of(a["index"]) or "?", f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in self.ipr.get_addr(family=socket.AF_INET)
        ]

    def routes(self) -> list[Route]:
        out = []
        for r in self.ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
            dst = r.get_attr("RTA_DST") or "0.0.0.0"
            out.append(
                Route(
                    ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False),
                    r.get_attr("RTA_GATEWAY"),
                    self._name_of(r.get_attr("RTA_OIF")),
                )
            )
        return out

    def default_mtu(self) -> int | None:
        """MTU of the device behind the default route, which flanneld picks when no iface is given."""
        return default_mtu(self.routes(), self.link)

    def set_ipv4(self, name: str, wanted: list[str], mtu: int | None = None) -> None:
        """Make `wanted` the only IPv4 addresses of `name` and set its MTU; leave IPv6 alone."""
        current = self.link(name)
        if current is None:
            raise WizardError(f"link {name} does not exist", "start the container runtime so it creates its bridge")
        try:
            if mtu is not None and mtu != current.mtu:
                self.ipr.link("set", index=current.index, mtu=mtu)
            for cidr in current.ipv4:
                if cidr not in wanted:
                    addr, plen = cidr.split("/")
                    self.ipr.addr("del", index=current.index, address=addr, prefixlen=int(plen))
            for cidr in wanted:
                if cidr not in current.ipv4:
                    addr, plen = cidr.split("/")
                    self.ipr.addr("add", index=current.index, address=addr, prefixlen=int(plen))
        except NetlinkError as exc:
            raise WizardError(f"could not change {name}: {exc.args[1] if len(exc.args) > 1 else exc}", "run as root") from None
