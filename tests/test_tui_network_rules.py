"""The Network page with flannel's newer parts (issue 11): ipsec among the backends with its own options,
the dual-stack fields under their own fold, each checked as you type in flannel's words, on the demo's node."""

from __future__ import annotations

import pytest
from textual.widgets import Collapsible, Switch

from tests.tui import demo_app, goto, next_page, run, shown, type_into, until


def test_ipsec_is_offered_with_its_options_and_its_psk_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TUI_PSK", "k" * 96)

    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            await until(pilot, lambda: app.screen.facts is not None, what="node facts")
            select = app.screen.query_one("#f-network-backend-type")
            select.value = "ipsec"
            await pilot.pause()
            assert app.screen.query_one("#opts-ipsec").display and not app.screen.query_one("#opts-vxlan").display
            assert "PSK of 96+ characters" in shown(app, "#backend-help")
            # no PSK yet: flannel's own refusal, at the PSK field, and Next stays on the page
            assert "config error, password is too short" in shown(app, "#err-f-ipsec-network-backend-psk-env")
            assert await next_page(pilot, app) == "network"
            await type_into(pilot, app, "f-ipsec-network-backend-psk-env", "FW_TUI_PSK")
            assert shown(app, "#err-f-ipsec-network-backend-psk-env") == ""
            app.screen.query_one("#f-ipsec-network-backend-udp-encap", Switch).value = True
            await pilot.pause()
            assert "FLANNEL_MTU will be 1415 (MTU 1500 of the default route's device − 85 for ipsec)" in shown(app, "#checks")
            backend = app.session.answers().network.flannel_config(secrets=False)["Backend"]
            assert backend == {"Type": "ipsec", "UDPEncap": True, "PSK": "********"}
            assert await next_page(pilot, app) == "flanneld"

    run(main())


def test_dual_stack_fields_are_checked_in_flannels_words() -> None:
    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            await until(pilot, lambda: app.screen.facts is not None, what="node facts")
            fold = app.screen.query_one("#dual-stack", Collapsible)
            assert fold.collapsed  # IPv4 alone, as the answers say: out of the way
            fold.collapsed = False
            await pilot.pause()
            app.screen.query_one("#f-network-enable-ipv6", Switch).value = True
            await pilot.pause()
            assert ("please define a correct IPv6Network parameter in the flannel config (flannel's rule)"
                    in shown(app, "#err-f-network-ipv6-cidr"))
            await type_into(pilot, app, "f-network-ipv6-cidr", "fc00::/48")
            await type_into(pilot, app, "f-network-ipv6-subnet-len", "127")
            assert "SubnetLen must be less than /127 (flannel's rule)" in shown(app, "#err-f-network-ipv6-subnet-len")
            await type_into(pilot, app, "f-network-ipv6-subnet-len", "")
            assert "fc00::/48: 65535 node IPv6 subnets /64" in shown(app, "#checks")
            config = app.session.answers().network.flannel_config(secrets=False)
            assert (config["EnableIPv6"], config["IPv6Network"]) == (True, "fc00::/48")
            # a backend without an IPv6 path: the wizard's own finding, said as such
            app.screen.query_one("#f-network-backend-type").value = "udp"
            await pilot.pause()
            assert "the wizard's own check" in shown(app, "#err-f-network-enable-ipv6")
            assert await next_page(pilot, app) == "network"

    run(main())


def test_a_value_going_valid_and_invalid_moves_nothing_on_the_page() -> None:
    """Typing a CIDR turns it invalid and valid in turn: the field's problem line, once shown, keeps its
    line (blank while the value is valid), and the checks keep their tallest height, so no widget on the
    page changes size on such a key (a change of size costs Textual a second layout of the page)."""

    async def main() -> None:
        app = demo_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "network")
            await until(pilot, lambda: app.screen.facts is not None, what="node facts")
            error = app.screen.query_one("#err-f-network-cidr")
            assert not error.display  # never shown yet: no blank line under a field that had no problem
            await type_into(pilot, app, "f-network-cidr", "10.244.0.0/")
            assert shown(app, "#err-f-network-cidr").startswith("✗") and error.display
            sizes = {w: w.size for w in app.screen.query("#body *") if w.display}
            await type_into(pilot, app, "f-network-cidr", "10.244.0.0/16")
            assert shown(app, "#err-f-network-cidr") == "" and error.display  # blank, in its place
            assert "Checks against this node" in shown(app, "#checks")
            await type_into(pilot, app, "f-network-cidr", "10.244.0.0/")
            await type_into(pilot, app, "f-network-cidr", "10.244.0.0/16")
            assert {w: w.size for w in sizes} == sizes

    run(main())
