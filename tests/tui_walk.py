"""Drive the real wizard app on a real node, headless, from a subprocess the tests start inside a
test namespace (Textual's Pilot needs no terminal). It presses Next through every page, records the
plan the Review page shows, optionally confirms Apply and saves the answers, and prints JSON.

  python -m tests.tui_walk --answers F --root R --state-dir S [--ignore A,B] [--apply] [--save P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tests.tui import confirm_apply, next_page, until
from wizard.node import Node
from wizard.session import Session


async def walk(args: argparse.Namespace) -> dict[str, object]:
    from screens.app import WizardApp

    node = Node(args.root)
    session = Session.from_file(node, args.answers, state_dir=args.state_dir)
    session.ignore_preflight.update(n for n in args.ignore.split(",") if n)
    app = WizardApp(session)
    out: dict[str, object] = {"pages": []}
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.findings is not None, 30, "preflight")  # type: ignore[attr-defined]
        while app.screen_name != "review":
            out["pages"].append(app.screen_name)  # type: ignore[union-attr]
            name = app.screen_name
            if await next_page(pilot, app) == name:
                out["blocked"] = f"{name}: {app.screen.blocked()}"
                return out
        await until(pilot, lambda: app.screen.result is not None or app.screen.problems, 30, "plan")  # type: ignore[attr-defined]
        result = app.screen.result  # type: ignore[attr-defined]
        out["plan"] = [[s.name, c.kind, c.summary, c.diff, c.pending_on] for s in (result.steps if result else [])
                       for c in s.planned]
        if args.apply:
            out["code"] = await confirm_apply(pilot, app, timeout=60)
            out["events"] = [[e.step, e.status, e.message] for e in app.events]
        if args.save:
            out["saved"] = app.save_answers(args.save)
    node.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--state-dir", default="/var/lib/flannel-wizard")
    parser.add_argument("--ignore", default="")
    parser.add_argument("--apply", action="store_true")
    parser.add_argument("--save")
    result = asyncio.run(walk(parser.parse_args()))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
