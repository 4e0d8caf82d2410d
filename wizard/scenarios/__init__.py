"""Demo scenarios: machine profiles for the simulated node, one small YAML file each.

A scenario may name a `base` and give only what differs; mappings merge, everything else replaces.

Services are played from unit files, as systemd would: each binary the scenario lists gets its
package's unit under /usr/lib/systemd/system; `units: {NAME.service: TEXT}` replaces one (null
removes it), and `files:` can add /etc/systemd/system overrides and NAME.service.d/*.conf drop-ins.
"""

from __future__ import annotations

from pathlib import Path

from wizard.errors import InputError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the demo's --help lists scenarios)
if TYPE_CHECKING:
    from typing import Any

HERE = Path(__file__).parent
DEFAULT = "fresh-node"


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load(name: str) -> dict[str, Any]:
    import yaml

    path = HERE / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"no demo scenario '{name}'", f"scenarios are {', '.join(names())}")
    data = yaml.safe_load(path.read_text()) or {}
    base = data.pop("base", None)
    data = _merge(load(base), data) if base else data
    data["name"] = name
    return data
