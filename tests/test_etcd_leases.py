"""Flannel leases at cluster scale (issue 14): the etcd step sums thousands of leases up in one line and
lists them on request (--verbose, --output json, ctrl+l on the etcd page), reads them in one Range decoded
from its bytes, and reads each key and value once; LeaseIndex looks addresses up without a pass over the
leases. Against a real etcd holding thousands of leases in flanneld's format; counted, never timed."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import lab, leasefill
from tests.conftest import run_wizard
from tests.tui import goto, run, until
from wizard import flannel
from wizard.answers import Etcd as EtcdSettings
from wizard.answers import parse
from wizard.events import EVENTS_VERSION, schema
from wizard.node.etcd import V3Store, connect
from wizard.node.files import Files
from wizard.steps import Plan
from wizard.steps import etcd as etcd_step

MANY = 3000  # enough that a line per lease would show, small enough to fill in a second


@pytest.fixture(scope="module")
def cluster(etcd: lab.Etcd) -> tuple[str, list[tuple[str, str]]]:
    """A prefix holding MANY leases (and the config), shared by this module's tests: they only read it."""
    prefix = f"/fwtest-{uuid.uuid4().hex[:8]}/network"
    return prefix, leasefill.fill(etcd.endpoint, prefix, MANY)


def expected_lines(leases: list[tuple[str, str]]) -> list[str]:
    return [f"{flannel.parse_lease_key(k)} → {json.loads(v)['PublicIP']}" for k, v in leases]


def summary_line() -> str:
    total = flannel.subnet_range({"Network": leasefill.NETWORK, "SubnetLen": 24}).count
    return f"{MANY} lease(s) taken, {total - MANY} of {total} node subnets left"


def plan_cli(etcd: lab.Etcd, prefix: str, tmp_path: Path, *extra: str) -> str:
    path = tmp_path / "a.yaml"
    path.write_text(leasefill.answers(etcd.endpoint, prefix))
    result = run_wizard("plan", str(path), "--only", "etcd", "--root", str(tmp_path), "--state-dir",
                        str(tmp_path / "state"), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# ---------------------------------------------------------------- what the CLI prints


def test_plan_sums_the_leases_up_in_one_line(etcd: lab.Etcd, cluster: Any, tmp_path: Path) -> None:
    prefix, _leases = cluster
    out = plan_cli(etcd, prefix, tmp_path).splitlines()
    at = out.index(f"[ ok ] etcd: {summary_line()}")
    assert out[at + 1] == f"       ({MANY} listed with --verbose)"
    assert not [line for line in out if "→" in line]  # no lease of its own line
    assert len(out) < 15


def test_verbose_lists_every_lease_under_the_summary_in_key_order(etcd: lab.Etcd, cluster: Any, tmp_path: Path) -> None:
    prefix, leases = cluster
    out = plan_cli(etcd, prefix, tmp_path, "--verbose").splitlines()
    at = out.index(f"[ ok ] etcd: {summary_line()}")
    assert out[at + 1:at + 1 + MANY] == ["       " + line for line in expected_lines(leases)]
    assert "listed with --verbose" not in "\n".join(out)


def test_json_keeps_every_lease_as_items_of_the_note(etcd: lab.Etcd, cluster: Any, tmp_path: Path) -> None:
    prefix, leases = cluster
    lines = [json.loads(line) for line in plan_cli(etcd, prefix, tmp_path, "--output", "json").splitlines()]
    note = next(e for e in lines if e.get("message") == summary_line())
    assert note["kind"] == "note" and note["version"] == EVENTS_VERSION >= 5  # items came in version 5
    assert note["items"] == expected_lines(leases) and note["detail"] == ""
    result = lines[-1]["result"]
    kept = next(n for s in result["steps"] if s["name"] == "etcd" for n in s["notes"] if n["message"] == summary_line())
    assert kept["items"] == note["items"]
    assert all(e["items"] == [] for e in lines[:-1] if e is not note)  # only a listing has items


def test_the_schema_describes_items() -> None:
    described = schema()
    assert f"version {EVENTS_VERSION}" in described["description"]
    assert described["event"]["properties"]["items"]["items"] == {"type": "string"}
    notes = described["result"]["$defs"]["NoteInfo"]["properties"]
    assert notes["items"]["type"] == "array"


# ---------------------------------------------------------------- the read


def test_list_is_what_etcd3_reads_tricky_keys_and_values_included(etcd: lab.Etcd) -> None:
    prefix = f"/fwtest-{uuid.uuid4().hex[:8]}/network/subnets/"
    odd = {
        prefix + "10.0.1.0-24": leasefill.lease("/p", 0)[1],
        prefix + "x" * 300: "long key: a two-byte length",
        prefix + "big": "v" * 70_000,  # a three-byte length
        prefix + "empty": "",
        prefix + "ünïcode-é": '{"PublicIP":"192.168.0.9","PublicIPv6":"fd00::9"}',
    }
    for key, value in odd.items():
        etcd.ctl("put", "--", key, value)
    etcd.ctl("put", prefix.rstrip("/") + "0", "just past the prefix: not listed")
    store = connect(EtcdSettings(endpoints=[etcd.endpoint], api="v3"), None, Files("/"))
    try:
        assert isinstance(store, V3Store)
        ref = sorted((meta.key.decode(), value.decode()) for value, meta in store.client.get_prefix(prefix))
        got = store.list(prefix)
        assert got == ref and len(got) == len(odd)
        assert store.list(prefix + "nothing/") == []
    finally:
        store.close()


# ---------------------------------------------------------------- reading keys and values


def test_lease_nets_answers_as_parse_lease_key_does() -> None:
    rnd = random.Random(14)
    octets = ["0", "1", "10", "01", "255", "256", "172", "30", "999", "00"]
    heads = "0123.9/-x&:"
    for _ in range(20_000):
        head = "".join(rnd.choice(heads) for _ in range(rnd.randint(0, 6)))
        v4 = rnd.choice([".", ".", ".", "x"]).join(rnd.choice(octets) for _ in range(4))
        key = head + v4 + "-" + rnd.choice(["0", "8", "24", "31", "32", "024"]) + rnd.choice(
            ["", "", "\n", "&fc00:0:0:5::-64", "&fc00::1-64", "&zz-64"])
        lease = flannel.parse_lease_key(key)
        want = None if lease is None else tuple(
            None if n is None else (int(n.network_address), n.prefixlen, str(n)) for n in (lease.subnet, lease.ipv6_subnet))
        assert flannel.lease_nets(key) == want, key
        if lease is not None:
            assert flannel.shown_lease(flannel.lease_nets(key)) == str(lease)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    '{"PublicIP":"192.168.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1}}',
    '{"PublicIP":"192.168.0.2","PublicIPv6":"fd00::2","BackendType":"vxlan"}',
    '{"PublicIP":"192.168.0.2"}',
    '{"PublicIPv6":"fd00::2","PublicIP":"192.168.0.2"}',
    '{"PublicIP": "192.168.0.2", "PublicIPv6": null}',
    '{"PublicIP":"192.168.0.2","PublicIPv6":null,"BackendData":{"PublicIP":"10.9.9.9"}}',
    '{"PublicIP":"192.168.0.2","PublicIP":"192.168.0.3","PublicIPv6":null}',
    '{"PublicIP":"192.168\\u002e0.2","PublicIPv6":null}',
    '{"PublicIP":5,"PublicIPv6":null}', "not json", "[]", "",
])
def test_lease_addresses_answer_as_json_does(value: str) -> None:
    try:
        attrs = json.loads(value)
    except ValueError:
        attrs = {}
    attrs = attrs if isinstance(attrs, dict) else {}
    want = tuple(a if isinstance(a, str) else None for a in (attrs.get("PublicIP"), attrs.get("PublicIPv6")))
    assert flannel.lease_addresses(value) == want


class Counted:
    """Wraps a function and counts its calls."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.fn(*args)


@pytest.mark.parametrize("count", [1000, 4000])
def test_the_plan_reads_each_key_and_value_once(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear, counted: one key parse and one value read per lease, at 1 000 and at 4 000 leases (before
    this, four key parses and two JSON parses per lease, and a look-up compared every endpoint with every lease)."""
    leases = sorted(leasefill.lease("/p", i) for i in range(count))
    nets, addresses = Counted(flannel.lease_nets), Counted(flannel.lease_addresses)
    monkeypatch.setattr(flannel, "lease_nets", nets)
    monkeypatch.setattr(flannel, "lease_addresses", addresses)
    result = Plan()
    etcd_step._leases("/p", leases, {"Network": leasefill.NETWORK, "SubnetLen": 24}, result)
    assert nets.calls == count and addresses.calls == count
    assert result.notes[0].items == tuple(expected_lines(leases))


def test_lease_index_reads_each_lease_once_and_looks_each_address_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    leases = [leasefill.lease("/p", i) for i in range(16_000)]
    nets, addresses = Counted(flannel.lease_nets), Counted(flannel.lease_addresses)
    monkeypatch.setattr(flannel, "lease_nets", nets)
    monkeypatch.setattr(flannel, "lease_addresses", addresses)
    index = flannel.LeaseIndex(leases)
    assert nets.calls == addresses.calls == 16_000 and len(index) == 16_000
    gets = 0

    class Counting(dict):  # type: ignore[type-arg]
        def get(self, *args: Any) -> Any:  # type: ignore[override]
            nonlocal gets
            gets += 1
            return super().get(*args)

    index._tables = {k: Counting(v) for k, v in index._tables.items()}
    endpoints = [f"10.{(i * 160 + 1) // 256}.{(i * 160 + 1) % 256}.7" for i in range(100)]
    assert [index.holding(ip) for ip in endpoints] == [
        f"node subnet 10.{(i * 160 + 1) // 256}.{(i * 160 + 1) % 256}.0/24 ({leasefill.public_ip(i * 160)})"
        for i in range(100)]
    assert gets == 100  # one table (IPv4 /24), one look-up per endpoint: no pass over the leases


# ---------------------------------------------------------------- the etcd page


def test_the_etcd_page_counts_the_leases_and_ctrl_l_lists_them(etcd: lab.Etcd, cluster: Any, tmp_path: Path) -> None:
    from textual.widgets import Input

    from screens.app import WizardApp
    from screens.etcd import ItemsScreen, LinesView
    from wizard.node import Node
    from wizard.session import Session

    prefix, leases = cluster
    answers = parse(leasefill.answers(etcd.endpoint, prefix))
    session = Session(Node(str(tmp_path)))
    session.set(("etcd", "endpoints"), answers.etcd.endpoints)
    session.set(("etcd", "prefix"), prefix)
    session.set(("etcd", "api"), "v3")
    session.set(("network", "cidr"), leasefill.NETWORK)

    async def main() -> None:
        app = WizardApp(session)
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, app, "etcd")
            page = app.screen
            await pilot.press("ctrl+l")  # before a probe there is nothing to list: said, nothing opens
            assert app.screen is page
            await pilot.press("ctrl+t")
            await until(pilot, lambda: not page.probing, what="the probe")
            probe = str(page.query_one("#probe").content)
            assert summary_line() in probe and f"ctrl+l lists them ({MANY})" in probe and "→" not in probe
            await pilot.press("ctrl+l")
            await until(pilot, lambda: isinstance(app.screen, ItemsScreen), what="the lease list")
            listing = app.screen
            view = listing.query_one(LinesView)
            assert view.lines == expected_lines(leases)
            assert view.virtual_size.height == MANY  # rendered a screenful at a time, not a widget per lease
            assert str(listing.query_one("#items-count").content) == f"all {MANY}"
            wanted = leasefill.public_ip(1234)
            listing.query_one("#items-filter", Input).value = wanted
            await pilot.pause()
            assert view.lines == [line for line in expected_lines(leases) if wanted in line]
            assert len(view.lines) >= 1 and str(listing.query_one("#items-count").content).endswith(f"of {MANY}")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is page, what="the page again")

    run(main())
