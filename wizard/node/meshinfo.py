"""What the node tells the mesh step about the overlay and the probes it sends, without pyroute2 or
sockets: shared by the real node (`node/overlay.py`, `node/probes.py`) and the demo's simulated one."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

# answered: an echo reply (ICMP) · silent: nothing came back before the deadline · refused: ICMP port
# unreachable (UDP: nothing listens there) · too-big: the kernel or a router says the packet needs
# fragmenting and DF forbids it · unreachable: no route, or host/net unreachable came back · error: the
# probe could not be sent (detail says why)
Outcome = Literal["answered", "silent", "refused", "too-big", "unreachable", "error"]


@dataclass(frozen=True)
class VxlanDevice:
    """A vxlan link as the kernel has it (`ip -d link show flannel.1`)."""

    name: str
    vni: int | None
    port: int | None  # the UDP destination port; the kernel's default for flannel is 8472
    local: str | None
    learning: bool
    mtu: int
    mac: str
    up: bool
    ipv4: tuple[str, ...]  # "172.30.5.0/32"


@dataclass(frozen=True)
class Neighbour:
    dst: str
    lladdr: str | None
    permanent: bool


@dataclass(frozen=True)
class FdbEntry:
    lladdr: str
    dst: str | None  # the remote VTEP (the peer's PublicIP)


@dataclass(frozen=True)
class OverlayRoute:
    dst: ipaddress.IPv4Network
    gateway: str | None
    dev: str | None
    onlink: bool

    def __str__(self) -> str:
        text = str(self.dst)
        if self.gateway:
            text += f" via {self.gateway}"
        if self.dev:
            text += f" dev {self.dev}"
        return text + (" onlink" if self.onlink else "")


@dataclass(frozen=True)
class Overlay:
    """This node's forwarding state for the overlay: what flannel's backend programmed, as the kernel
    holds it now. `device` is None when the backend's device does not exist (host-gw has none)."""

    device: VxlanDevice | None
    routes: tuple[OverlayRoute, ...]  # the main table's IPv4 routes
    neighbours: tuple[Neighbour, ...]  # on the device
    fdb: tuple[FdbEntry, ...]  # on the device


@dataclass(frozen=True)
class Probe:
    """One packet sent to see what comes back. ICMP: an echo request with `size` bytes of payload (ping's
    -s), with DF set when `df` (ping -M do). UDP: one datagram to `port`."""

    kind: Literal["icmp", "udp"]
    address: str
    port: int = 0
    size: int = 56
    df: bool = False


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    outcome: Outcome
    detail: str = ""  # for too-big: the MTU the kernel or router named, when it did; for error: why
    rtt_ms: float | None = None
