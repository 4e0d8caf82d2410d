"""The Smoke page draws the kube-proxy path the engine sends in the rules sub-step's event: node for
node the tree `explain-service` prints, for every mode (iptables with affinity and both families,
nftables from what the real nft prints, IPVS from ipvsadm's saved listing). Nothing is re-parsed
from the event's text: a detail that disagrees with the tree is not what the page shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Tree

from tests import kubeproxy_nft as nft
from tests.kubeproxy import Service, iptables_save
from tests.tui import demo_app, goto, run
from wizard.events import StepEvent, SubStepInfo
from wizard.explain import explain
from wizard.proxypath import TreeNode, render

IPVS = Path(__file__).parent / "fixtures" / "ipvs"
ENDPOINTS4 = ["10.244.1.5:8080", "10.244.2.7:8080"]


def traced(mode: str) -> TreeNode:
    """The tree explain-service prints for a service in `mode`, from saved rules in that mode's format."""
    if mode == "iptables":
        four = Service("shop", "web", "10.96.0.20", 80, ENDPOINTS4, node_port=31000, affinity=10800)
        six = Service("shop", "web", "fd00:96::20", 80, ["[fd00:244:1::5]:8080"], node_port=31000)
        dumps = [(iptables_save([four]) + iptables_save([six]), "node2.rules")]
        return explain(None, "shop", "web", dumps=dumps).tree()
    if mode == "nftables":
        web = nft.Service("shop", "web", "10.96.0.20", 80, ENDPOINTS4, node_port=31000, affinity=600)
        return explain(None, "shop", "web", dumps=[(nft.listing([web]), "nft.txt")]).tree()
    dumps = [((IPVS / "ipvsadm-Ln.txt").read_text(), "ipvs.txt"), ((IPVS / "iptables-save-nat.txt").read_text(), "nat")]
    return explain(None, "default", "10.106.7.33:6379", dumps=dumps).tree()


def drawn(tree: Tree[str]) -> str:
    """The Tree widget's labels as `render` draws a tree, to compare the two line for line."""
    def copy(node: Any) -> TreeNode:
        return TreeNode(str(node.label), tuple(copy(child) for child in node.children))

    return render(copy(tree.root))


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_the_smoke_page_draws_the_engines_tree_for_every_mode(mode: str) -> None:
    path = traced(mode)
    text = render(path)
    assert mode == "iptables" or f"(kube-proxy {mode} mode)" in text
    event = StepEvent("smoke", "ok", "6/8 kube-proxy rules: kube-proxy routes it", "a detail the page does not parse",
                      kind="substep", substep=SubStepInfo(6, 8, "kube-proxy rules"), tree=path)

    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(140, 60)) as pilot:
            app.events = [StepEvent("smoke", "running", "smoke test"), event]
            await goto(pilot, app, "smoke")
            tree = app.screen.query_one("#smoke-tree", Tree)
            assert tree.display
            assert drawn(tree) == text

    run(main())
