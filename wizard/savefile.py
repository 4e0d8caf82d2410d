"""Answers out: the YAML file the TUI saves, which `validate` accepts and `apply` replays.

Secrets are never in it; the model only holds references (password_env, psk_env, ...).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.answers import Answers
    from wizard.node.files import Files


def data(answers: Answers) -> dict[str, Any]:
    out = answers.model_dump(mode="json")
    # Only the backend options that were set: flanneld's config carries those and nothing else,
    # so writing the defaults out would change the value replayed into etcd.
    backend = answers.network.backend
    out["network"]["backend"] = {"type": backend.type} | backend.model_dump(mode="json", exclude_unset=True)
    return out


def render(answers: Answers, secrets_note: str = "") -> str:
    import yaml

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        f"# flannel-wizard answers, saved {stamp}",
        "# replay with: flannel-wizard apply THIS_FILE   (check first: flannel-wizard plan THIS_FILE)",
    ]
    if secrets_note:
        head.append(f"# {secrets_note}")
    body = yaml.safe_dump(data(answers), sort_keys=False, default_flow_style=False)
    return "\n".join(head) + "\n" + body


def secrets_needed(answers: Answers) -> list[str]:
    """The references a replay needs filled in, in the operator's words."""
    out = []
    etcd = answers.etcd
    if etcd.password_env:
        out.append(f"export {etcd.password_env}=<etcd password>")
    elif etcd.password_file:
        out.append(f"the etcd password in {etcd.password_file}")
    backend = answers.network.backend
    psk_env = getattr(backend, "psk_env", None)
    psk_file = getattr(backend, "psk_file", None)
    if psk_env:
        out.append(f"export {psk_env}=<{backend.type} PSK>")
    elif psk_file:
        out.append(f"the {backend.type} PSK in {psk_file}")
    return out


def save(files: Files, path: str, answers: Answers) -> str:
    needed = secrets_needed(answers)
    note = "before replaying: " + "; ".join(needed) if needed else ""
    text = render(answers, note)
    files.write(path, text.encode(), mode=0o644)
    return text
