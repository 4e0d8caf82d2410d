"""kubectl through the node, with a request timeout on every call, and its JSON output read back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from wizard.errors import WizardError

if TYPE_CHECKING:
    from wizard.node import NodeLike
    from wizard.node.commands import Result

REQUEST_TIMEOUT_S = 10


def run(node: NodeLike, kubeconfig: str | None, *args: str, input: str | None = None) -> Result:
    argv = ["kubectl", f"--request-timeout={REQUEST_TIMEOUT_S}s"]
    if kubeconfig:
        argv += ["--kubeconfig", str(node.files.path(kubeconfig))]
    return node.commands.run(*argv, *args, input=input, timeout=REQUEST_TIMEOUT_S + 5)


def said(result: Result) -> str:
    text = (result.err or result.out).strip()
    return text.splitlines()[0] if text else f"kubectl exit {result.rc}"


def docs(result: Result) -> list[dict[str, Any]]:
    """kubectl -o json prints one document, or one after another for several objects."""
    decoder, text, pos, out = json.JSONDecoder(), result.out, 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        try:
            data, pos = decoder.raw_decode(text, pos)
        except ValueError:
            raise WizardError(f"kubectl printed something that is not JSON: {text[pos:pos + 80]!r}") from None
        if isinstance(data, dict):
            out.append(data)


def first(result: Result) -> dict[str, Any]:
    found = docs(result)
    return found[0] if found else {}


def items(result: Result) -> list[dict[str, Any]]:
    out = []
    for data in docs(result):
        out += list(data.get("items", [])) if data.get("kind", "").endswith("List") else [data]
    return out
