"""pyroute2's rtnetlink classes without the rest of pyroute2.

`import pyroute2` runs a package `__init__` that imports every part of the library (NDB, IPDB,
conntrack, nftables, wireless, plan9, ...): about 0.1 s, half of what the wizard pays to start
pyroute2, for parts it never uses. `light()` registers the package without running that file; its
submodules (`pyroute2.iproute.linux`, `pyroute2.netlink.exceptions`) import as usual. The first name
asked of the package itself that is not a submodule (`from pyroute2 import NDB` anywhere in the same
process) runs the `__init__` after all, so no other code sees a difference.
"""

from __future__ import annotations

import importlib.util
import sys

PACKAGE = "pyroute2"


def light() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed as a package: the plain import below reports it
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> object:
        # `from pyroute2 import iproute` asks for a submodule: AttributeError lets the import system load it
        if not name.startswith("__") and importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            raise AttributeError(name)
        vars(module).pop("__getattr__", None)
        loader.exec_module(module)
        try:
            return vars(module)[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[PACKAGE] = module

