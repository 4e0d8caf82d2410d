"""The node boundary: the only code that reads the machine's files, runs commands or touches links."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from wizard.node.commands import Commands
from wizard.node.files import Files
from wizard.node.http import Http
from wizard.node.kernel import Kernel

if TYPE_CHECKING:
    from wizard.answers import Etcd
    from wizard.node.commands import Result
    from wizard.node.etcd import Store
    from wizard.node.linkinfo import LinkInfo, Route
    from wizard.node.links import Links
    from wizard.node.meshinfo import Overlay, Probe, ProbeResult


class CommandsLike(Protocol):
    def which(self, name: str) -> str | None: ...
    def run(self, *argv: str, timeout: float = ..., input: str | None = None) -> Result: ...


class KernelLike(Protocol):
    def is_root(self) -> bool: ...
    def sysctl(self, key: str) -> str | None: ...
    def module_loaded(self, name: str) -> bool: ...
    def swaps(self) -> list[str]: ...
    def udp_port_free(self, port: int) -> bool: ...
    def init_name(self) -> str | None: ...
    def cgroup_v2(self) -> bool: ...


class HttpLike(Protocol):
    def get(self, url: str, timeout: float) -> tuple[bool, str]: ...


class LinksLike(Protocol):
    def link(self, name: str) -> LinkInfo | None: ...
    def addresses(self) -> list[tuple[str, str]]: ...
    def routes(self) -> list[Route]: ...
    def default_mtu(self) -> int | None: ...
    def set_ipv4(self, name: str, wanted: list[str], mtu: int | None = None) -> None: ...
    def close(self) -> None: ...


class MeshLike(Protocol):
    """What the mesh step reads of the overlay and sends across it (all reading: probes change nothing)."""

    def overlay(self, device: str | None) -> Overlay:
        """The backend's device (None: none, as for host-gw), the main table's routes, and the device's
        neighbours and fdb entries."""
        ...

    def probe(self, probes: list[Probe], timeout: float) -> list[ProbeResult]:
        """Send every probe at once and wait at most `timeout` seconds in all; results in the probes' order."""
        ...

    def gateway_to(self, address: str) -> str | None:
        """The gateway the kernel would use to reach `address` (`ip route get`): None when it is on-link,
        "" when the kernel has no route to it."""
        ...


class NodeLike(Protocol):
    """What the engine may use of a node: the real `Node` and the demo's `SimulatedNode` both give
    exactly this, so code typed against it cannot reach for a demo-only call."""

    simulated: bool
    files: Files

    @property
    def commands(self) -> CommandsLike: ...
    @property
    def kernel(self) -> KernelLike: ...
    @property
    def http(self) -> HttpLike: ...
    @property
    def links(self) -> LinksLike: ...
    @property
    def mesh(self) -> MeshLike: ...
    def etcd(self, settings: Etcd, password: str | None) -> Store: ...
    def close(self) -> None: ...
    def identity(self) -> dict[str, str]:
        """Which node this is, as the journal records it: {"kind": "node" | "demo", "root": ..., ...}."""
        ...


class Node:
    """A real node. `root` prefixes every file path; kernel state (/proc, /sys) is read where it is."""

    simulated = False

    def __init__(self, root: str = "/") -> None:
        self.files = Files(root)
        self.commands = Commands()
        self.kernel = Kernel()
        self.http = Http()
        self._links: Links | None = None
        self._mesh: MeshLike | None = None

    @property
    def links(self) -> Links:
        if self._links is None:
            # pyroute2 is heavy; only the steps that need links pay for importing it
            from wizard.node.links import Links

            self._links = Links()
        return self._links

    @property
    def mesh(self) -> MeshLike:
        if self._mesh is None:
            from wizard.node.overlay import RealMesh

            self._mesh = RealMesh(self.links)
        return self._mesh

    def etcd(self, settings: Etcd, password: str | None) -> Store:
        from wizard.node.etcd import connect

        return connect(settings, password, self.files)

    def identity(self) -> dict[str, str]:
        return {"kind": "node", "root": os.path.abspath(self.files.root)}

    def close(self) -> None:
        if self._links is not None:
            self._links.close()
