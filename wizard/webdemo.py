"""`flannel-wizard demo --web`: the demo served to browsers with textual-serve.

textual-serve runs one command per browser session (a websocket) and relays its screen to xterm.js
in the page. The command built here is always the demo (`python -m wizard demo --served ...`), so
a browser can only ever drive a simulated node; the interactive wizard on this node is never served.
Each session is its own demo process with its own temporary root, removed when the tab closes.

textual-serve (and aiohttp under it) is an optional extra, imported only when `demo --web` runs.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from typing import TYPE_CHECKING, Any

from wizard.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INSTALL_HINT = ("install the `web` extra: `pip install 'flannel-wizard[web]'` (from a checkout: "
                "`.venv/bin/pip install -e '.[web]'`), or just `pip install textual-serve`")


def served_command(scenario: str, speed: float, autoplay: bool = False, answers: str | None = None,
                   keep: bool = False) -> str:
    """The shell command textual-serve runs for each browser session: the demo, never the wizard."""
    argv: list[str] = [sys.executable, "-m", "wizard", "demo", "--served", "--scenario", scenario,
                       "--speed", f"{speed:g}"]
    if autoplay:
        argv.append("--autoplay")
    if answers:
        import os

        argv += ["--answers", os.path.abspath(answers)]  # the sessions may not share our working directory
    if keep:
        argv.append("--keep")
    return shlex.join(argv)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if shown in ("0.0.0.0", "[::]"):
        shown = "THIS-HOST"  # not an address a browser can open
    return f"http://{shown}:{port}/"


def serve(command: str, host: str, port: int, title: str, lines: Sequence[str] = ()) -> int:
    """Serve `command` at host:port until Ctrl+C (or SIGTERM); 0 when stopped, 2 when it cannot start."""
    try:
        from aiohttp import web
        from textual_serve.server import Server
    except ImportError as exc:
        raise InputError(f"`demo --web` needs textual-serve, which is not installed ({exc.name or exc})",
                         INSTALL_HINT) from None
    import asyncio

    class DemoServer(Server):  # type: ignore[misc]
        """textual-serve's Server with: page and websocket URLs taken from the address the browser
        used (textual-serve bakes in host:port, which is unreachable for --host 0.0.0.0), our own
        start-up lines instead of its banner, and open sessions ended when the server stops, so each
        demo quits and removes its files instead of waiting out aiohttp's 60 s shutdown grace."""

        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title=title)
            self.sessions: set[asyncio.Task[Any]] = set()

        def initialize_logging(self) -> None:
            super().initialize_logging()
            import logging

            logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per request: noise in a talk

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            task = asyncio.current_task()
            assert task is not None
            self.sessions.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                self.sessions.discard(task)

        async def on_startup(self, app: web.Application) -> None:
            for line in lines:
                print(line, flush=True)

        async def on_shutdown(self, app: web.Application) -> None:
            for task in list(self.sessions):
                task.cancel()  # textual-serve then tells the demo to quit and waits for it
            if self.sessions:
                await asyncio.wait(list(self.sessions), timeout=10)

    server = DemoServer()
    try:
        server.serve()
    except OSError as exc:  # the bind: port taken, address not on this machine, no permission
        raise InputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}",
                         "pick another --port (or --host)") from None
    print("stopped serving the demo", flush=True)
    return 0
