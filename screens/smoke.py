"""Smoke test: the smoke step's eight sub-steps, live while Apply runs, beside the service's path
through kube-proxy's rules as a tree: the engine's tree (`wizard.proxypath`, carried by the rules
sub-step's event), the same nodes `flannel-wizard explain-service` prints, in every kube-proxy mode."""

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
    from textual.widgets.tree import TreeNode

    from wizard.events import StepEvent
    from wizard.proxypath import TreeNode as PathNode

ABOUT = ("nginx pods behind a NodePort service; traffic to the cluster IP and to this node's port "
         "must reach them through kube-proxy's rules.")


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
                      and e.tree is not None and e.status != "running"), None)
        tree = self.query_one("#smoke-tree", Tree)
        if rules is None or rules.tree is None:
            tree.display = False
            return
        # the engine's tree, node for node: explain-service prints the same nodes as text
        tree.clear()
        # labels as Text: a str label is markup, and `[fd00::1]:80` would lose its address as a tag
        tree.root.set_label(Text(rules.tree.label))

        def add(parent: TreeNode[str], children: tuple[PathNode, ...]) -> None:
            for child in children:
                if child.children:
                    add(parent.add(Text(child.label), expand=True), child.children)
                else:
                    parent.add_leaf(Text(child.label))

        add(tree.root, rules.tree.children)
        tree.root.expand_all()
        tree.display = True

    def blocked(self) -> str:
        apply_page = self.wizard.get_screen("apply")
        if getattr(apply_page, "running", False):
            return "still applying"
        return ""


PAGE = SmokePage
