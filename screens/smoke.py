"""Smoke test: the smoke step's eight sub-steps, live while Apply runs, beside the service's path
through kube-proxy's rules as a tree (the same tree `flannel-wizard explain-service` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static, Tree

from screens.base import StepScreen
from screens.widgets import status_text
from wizard.steps.smoke import SUBSTEPS

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from wizard.events import StepEvent

ABOUT = ("nginx pods behind a NodePort service; traffic to the cluster IP and to this node's port "
         "must reach them through kube-proxy's rules.")


def tree_lines(text: str) -> list[tuple[int, str]]:
    """(depth, label) for each line of the explainer's text tree."""
    out = []
    for line in text.splitlines():
        stripped = line.lstrip("│ ├└─")
        depth = (len(line) - len(stripped)) // 3
        out.append((depth, stripped.strip()))
    return out


class SmokePage(StepScreen):
    NAME = "smoke"
    HEADING = "Smoke test — does traffic reach the pods?"

    def body(self) -> ComposeResult:
        yield Static(ABOUT, id="smoke-about")
        yield Static("", id="smoke-results")
        with Vertical(id="smoke-split"):
            yield Static("", id="smoke-steps")
            tree: Tree[str] = Tree("kube-proxy path", id="smoke-tree")
            tree.display = False
            yield tree

    def on_mount(self) -> None:
        super().on_mount()
        self.show()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show()

    def show(self) -> None:
        events = [e for e in self.wizard.events if e.step == "smoke"]
        box = self.query_one("#smoke-results", Static)
        if not events:
            box.update(Text("It runs as the last step of Apply; nothing has run yet.", style="dim"))
            self.query_one("#smoke-steps", Static).update("")
            return
        subs = [e for e in events if e.kind == "substep"]
        if not subs:  # the step said why it did not run (disabled, or an earlier step stopped the run)
            out = Text()
            for event in events:
                if event.kind == "step" and event.status == "running":
                    continue
                out.append_text(status_text(event.status, event.message, event.detail))
                out.append("\n")
            box.update(out)
            return
        final = next((e for e in reversed(events) if e.kind == "check"), None) or \
            next((e for e in reversed(events) if e.kind == "step" and e.status != "running"), None)
        box.update(status_text(final.status, final.message) if final else Text("running…", style="bold"))
        self.query_one("#smoke-steps", Static).update(self._steps(subs))
        self._tree(subs)

    @staticmethod
    def _steps(subs: list[StepEvent]) -> Text:
        latest: dict[str, StepEvent] = {}
        for event in subs:
            if event.substep is not None:
                latest[event.substep.title] = event
        out = Text()
        for n, title in enumerate(SUBSTEPS, start=1):
            event = latest.get(title)
            if event is None:
                out.append(f"○ {n}/{len(SUBSTEPS)} {title}\n", style="dim")
                continue
            text = event.message
            if event.status != "running" and event.elapsed:
                text += f"  {event.elapsed:.1f}s"
            out.append_text(status_text(event.status, text))
            out.append("\n")
        return out

    def _tree(self, subs: list[StepEvent]) -> None:
        rules = next((e for e in reversed(subs) if e.substep is not None and e.substep.title == "kube-proxy rules"
                      and e.detail and e.status != "running"), None)
        tree = self.query_one("#smoke-tree", Tree)
        if rules is None:
            tree.display = False
            return
        lines = tree_lines(rules.detail)
        tree.clear()
        tree.root.set_label(lines[0][1] if lines else "kube-proxy path")
        stack = [tree.root]
        body = lines[1:]
        for n, (depth, label) in enumerate(body):
            while len(stack) > depth:
                stack.pop()
            has_children = n + 1 < len(body) and body[n + 1][0] > depth
            if has_children:
                stack.append(stack[-1].add(label, expand=True))
            else:
                stack[-1].add_leaf(label)
        tree.root.expand_all()
        tree.display = True

    def blocked(self) -> str:
        apply_page = self.wizard.get_screen("apply")
        if getattr(apply_page, "running", False):
            return "still applying"
        return ""


PAGE = SmokePage
