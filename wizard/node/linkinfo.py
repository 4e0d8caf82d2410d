"""What the node knows about links and routes, without pyroute2: shared by the real links and the
demo's simulated ones (and importable where pyroute2 would only slow the start)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkInfo:
    name: str
    index: int
    mtu: int
    kind: str
    ipv4: tuple[str, ...]  # "172.30.46.1/24", in the kernel's order


@dataclass(frozen=True)
class Route:
    dst: ipaddress.IPv4Network
    gateway: str | None
    dev: str | None

    def __str__(self) -> str:
        text = "default" if self.dst.prefixlen == 0 else str(self.dst)
        if self.gateway:
            text += f" via {self.gateway}"
        if self.dev:
            text += f" dev {self.dev}"
        return text


def default_mtu(routes: list[Route], link: Callable[[str], LinkInfo | None]) -> int | None:
    """MTU of the device behind the default route, which flanneld picks when no iface is given."""
    for route in routes:
        if route.dst.prefixlen == 0 and route.dev:
            info = link(route.dev)
            if info:
                return info.mtu
    return None
