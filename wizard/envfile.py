"""Edit KEY="value" files (sysconfig, EnvironmentFile) keeping every line the wizard does not own."""

from __future__ import annotations

import re

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
_COMMENTED = re.compile(r"^\s*#\s*([A-Za-z_][A-Za-z0-9_]*)=")


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'


def update(text: str | None, values: dict[str, str]) -> str:
    """Set each key in `values`; replace its active line in place, else add it after a commented-out
    example of it (`#FLANNEL_OPTIONS=""`), else at the end."""
    lines = (text or "").splitlines()
    todo = dict(values)
    out: list[str] = []
    for line in lines:
        match = _ASSIGN.match(line)
        if match and match.group(1) in values:
            key = match.group(1)
            if key in todo:
                out.append(f"{key}={quote(todo.pop(key))}")
            continue  # a second assignment of a key we own would override ours
        out.append(line)
    for key in list(todo):
        for i, line in enumerate(out):
            match = _COMMENTED.match(line)
            if match and match.group(1) == key:
                out.insert(i + 1, f"{key}={quote(todo.pop(key))}")
                break
    out.extend(f"{key}={quote(value)}" for key, value in todo.items())
    return "\n".join(out) + "\n"
