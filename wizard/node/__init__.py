"""The node boundary: the only code that reads the machine's files, runs commands or touches links."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wizard.node.commands import Commands
from wizard.node.files import Files
from wizard.node.http import Http
from wizard.node.kernel import Kernel

if TYPE_CHECKING:
    from wizard.answers import Etcd
    from wizard.node.etcd import Store
    from wizard.node.links import Links


class Node:
    """A real node. `root` prefixes every file path; kernel state (/proc, /sys) is read where it is."""

    simulated = False

    def __init__(self, root: str = "/") -> None:
        self.files = Files(root)
        self.commands = Commands()
        self.kernel = Kernel()
        self.http = Http()
        self._links: Links | None = None

    @property
    def links(self) -> Links:
        if self._links is None:
            # pyroute2 is heavy; only the steps that need links pay for importing it
            from wizard.node.links import Links

            self._links = Links()
        return self._links

    def etcd(self, settings: Etcd, password: str | None) -> Store:
        from wizard.node.etcd import connect

        return connect(settings, password, self.files)

    def close(self) -> None:
        if self._links is not None:
            self._links.close()
