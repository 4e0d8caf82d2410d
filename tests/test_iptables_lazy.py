"""The tracer on a big cluster's dump (issue 14): `parse` splits no rule, a trace splits only the rules
of the chains it visits (and those naming the service), in a fixed number of passes over the text,
whatever the table's size; and read lazily or line by line, every answer is the same, errors included."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from tests.kubeproxy import Service, iptables_save
from wizard import iptables
from wizard.proxypath import Path, tree
from wizard.proxypath import render as draw

WEB = Service("shop", "web", "10.97.0.10", 80, [f"10.244.9.{i}:8080" for i in range(2, 6)], node_port=31080)
EMPTY = Service("shop", "gone", "10.97.0.11", 80, [], node_port=31081)
LOCAL = Service("shop", "api", "10.97.0.12", 443, ["10.244.9.9:8443"], node_port=31443, local=True)


def cluster(n: int) -> list[Service]:
    """`n` services like bench/explain.py's (1-4 endpoints, every other one with a node port), with
    WEB, EMPTY and LOCAL in the middle."""
    many = [Service(f"ns{i % 7}", f"svc{i}", f"10.{96 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}", 80,
                    [f"10.244.{i % 200}.{j + 2}:8080" for j in range(1 + i % 4)],
                    node_port=30000 + i % 2000 if i % 2 else None) for i in range(n)]
    return many[:n // 2] + [WEB, EMPTY, LOCAL] + many[n // 2:]


# ---------------------------------------------------------------- what a trace costs


@pytest.mark.parametrize("saved", [False, True], ids=["restore order", "iptables-save order"])
def test_a_trace_splits_what_it_visits_not_the_table(saved: bool) -> None:
    """The count of rules split and of passes over the text is the same for 300 and 6000 services:
    the work of a trace beyond the whole-text passes does not grow with the table."""
    costs = []
    for n in (300, 6000):
        text = iptables_save(cluster(n), counters=True, saved=saved)
        ruleset = iptables.parse(text)
        assert (ruleset.split, ruleset.passes) == (0, 0)  # parse checks the text, splits nothing
        found = iptables.trace(ruleset, "shop", "web")
        assert found.endpoints == WEB.endpoints
        assert _render(found) == _render(iptables.trace(iptables.Ruleset.read_line_by_line(text),
                                                                        "shop", "web"))
        costs.append((ruleset.split, ruleset.passes))
        assert text.count("\n-") + text.count("\n[") > 6 * n  # the table: thousands of rules
    small, big = costs
    assert small == big
    # entries 2, KUBE-SVC 4, KUBE-EXT 2, 4 KUBE-SEP of 2: 16 rules; every rule here names the service
    split, passes = big
    assert split == 16 and passes <= 3


def test_a_missing_service_lists_the_entries_not_every_rule() -> None:
    """'did you mean' needs the services' names: the KUBE-SERVICES and KUBE-NODEPORTS rules and the
    REJECTs, not the KUBE-SVC and KUBE-SEP chains that make up most of the table."""
    many = cluster(3000)
    ruleset = iptables.parse(iptables_save(many))
    entries = sum(1 + (s.node_port is not None) for s in many if s.endpoints) + 1  # + the jump to KUBE-NODEPORTS
    assert iptables.trace(ruleset, "shop", "wbe").branches == []
    assert "shop/web" in iptables.services(ruleset)
    assert ruleset.split <= entries + 1 + 2  # + EMPTY's REJECT; a trace of nothing splits nothing
    assert ruleset.split < len(ruleset.all_rules()) // 4


def test_many_lookups_turn_into_one_read_of_every_rule() -> None:
    """Each lazy look-up is a pass over the text: past LAZY_PASSES, every rule is split once instead."""
    many = cluster(80)
    text = iptables_save(many)
    lazy, careful = iptables.parse(text), iptables.Ruleset.read_line_by_line(text)
    chains = [c for (table, c) in careful.chains if table == "nat"]
    assert len(chains) > 3 * iptables.LAZY_PASSES
    before = 0  # rules split by the lazy look-ups
    for i, chain in enumerate(chains):
        assert lazy.rules("nat", chain) == careful.rules("nat", chain)
        if i < iptables.LAZY_PASSES:
            before = lazy.split
    assert lazy.passes == iptables.LAZY_PASSES
    assert lazy.split == before + len(careful.all_rules())


# ---------------------------------------------------------------- lazily or line by line: the same answers


def answers(read: object, text: str) -> str:
    """Everything explain-service asks of the rules, as text; or the error, as the CLI would say it."""
    try:
        ruleset = read(text)  # type: ignore[operator]
        out = []
        for namespace, name in (("shop", "web"), ("shop", "gone"), ("shop", "api"), ("ns1", "svc1"),
                                ("default", "example-service"), ("shop", "nothing")):
            found = iptables.trace(ruleset, namespace, name)
            out.append(_render(found))
            out.append(repr(found.refusals))
        out.append(repr((iptables.has_kube_proxy(ruleset), sorted(ruleset.tables), iptables.services(ruleset))))
        out.append(repr([dataclasses.astuple(p) for p in iptables.service_ports(ruleset)]))
        out.append(repr(ruleset.policies))
        return "\n".join(out)
    except iptables.NotIptablesSave as exc:
        return f"{type(exc).__name__}: {exc}"
    except ValueError as exc:  # a --probability that is no number: the tracer fails alike both ways
        return f"{type(exc).__name__}: {exc}"


def lazily(text: str) -> iptables.Ruleset:
    return iptables.parse(text)


def line_by_line(text: str) -> iptables.Ruleset:
    return iptables.Ruleset.read_line_by_line(text)


SMALL = [Service("ns1", "svc1", "10.96.0.1", 80, ["10.244.1.2:8080"], node_port=30001),
         Service("ns1", "svc10", "10.96.0.2", 80, ["10.244.1.3:8080", "10.244.2.3:8080"]),
         WEB, EMPTY, LOCAL]
ARTICLE = Service("default", "example-service", "10.254.124.145", 8080, ["172.30.38.2:8080", "172.30.46.2:8080"],
                  node_port=30554)


def _line(text: str, needle: str) -> int:
    """The index (in text.split("\\n")) of the first line holding `needle` (every part, split at `+`)."""
    return next(i for i, line in enumerate(text.split("\n")) if all(part in line for part in needle.split("+")))


def _edit(text: str, needle: str, change: object) -> str:
    lines = text.split("\n")
    i = _line(text, needle)
    lines[i:i + 1] = change(lines[i])  # type: ignore[operator]
    return "\n".join(lines)


# each: a name, and the text made from a whole dump, WEB's KUBE-SVC chain and its first KUBE-SEP chain
EDITS = {
    "as saved": lambda t, svc, sep: t,
    "CRLF line ends": lambda t, svc, sep: t.replace("\n", "\r\n"),
    "a tab in a rule": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line.replace(" -j ", "\t-j ", 1)]),
    "a tab after the chain": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line.replace(f"{svc} ", f"{svc}\t", 1)]),
    "two spaces after -A": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line.replace("-A ", "-A  ", 1)]),
    "a leading space": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [" " + line]),
    "trailing spaces": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line + "   "]),
    "an escaped quote": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line.replace('-> ', '-> \\"x\\" ', 1)]),
    "an escaped slash in the comment": lambda t, svc, sep: _edit(t, "shop/web+cluster IP", lambda line: [line.replace("shop/web", "shop\\/web")]),
    "an unclosed quote": lambda t, svc, sep: _edit(t, "ns1/svc10+cluster IP", lambda line: [line + ' "']),
    "a quote after a letter": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [line.replace("--comment ", 'x"y z" --comment ', 1)]),
    "non-ASCII in a comment": lambda t, svc, sep: _edit(t, "shop/web+cluster IP", lambda line: [line.replace("cluster IP", "cluster IP é")]),
    "a form feed": lambda t, svc, sep: _edit(t, "ns1/svc10+cluster IP", lambda line: [line.replace(" -j", "\x0c-j", 1)]),
    "a comment line naming the service": lambda t, svc, sep: _edit(t, "*filter", lambda line: ["# -A KUBE-SERVICES shop/web: -j REJECT", line]),
    "blank lines": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: ["", line, "", "# between"]),
    "a chain line after COMMIT": lambda t, svc, sep: t.replace("COMMIT\n# Completed", "COMMIT\n:STRAY - [0:0]\n# Completed"),
    "a rule after COMMIT": lambda t, svc, sep: t.replace("COMMIT\n# Completed", "COMMIT\n-A STRAY -j ACCEPT\n# Completed"),
    "a COMMIT before any table": lambda t, svc, sep: "COMMIT\n" + t,
    "a rule before any table": lambda t, svc, sep: "-A X -j Y\n" + t,
    "a table line without a name": lambda t, svc, sep: t.replace("*filter", "*"),
    "a table inside a table": lambda t, svc, sep: t.replace("COMMIT\n# Completed", "# Completed"),
    "cut off": lambda t, svc, sep: t[:t.rindex("COMMIT")],
    "no newline at the end": lambda t, svc, sep: t.rstrip("\n"),
    "-I instead of -A": lambda t, svc, sep: _edit(t, "ns1/svc10+cluster IP", lambda line: [line.replace("-A ", "-I ", 1)]),
    "bad counters": lambda t, svc, sep: _edit(t, "ns1/svc10+cluster IP", lambda line: ["[x:1] " + line]),
    "big counters": lambda t, svc, sep: _edit(t, "shop/web+cluster IP", lambda line: ["[123:45678] " + line]),
    "a chain line without a name": lambda t, svc, sep: t.replace(":KUBE-MARK-MASQ - [0:0]", ":"),
    "-A inside a comment": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [
        line, f'-A KUBE-MARK-MASQ -m comment --comment "see -A {sep} shop/web" -j MARK']),
    "a second nat table": lambda t, svc, sep: t + f"*nat\n:{svc} - [0:0]\n-A {svc} -m comment --comment \"shop/web -> 10.1.1.1:1\" -j KUBE-SEP-LATE\n-A KUBE-SEP-LATE -j DNAT --to-destination 10.1.1.1:1\nCOMMIT\n",
    "REJECTs in two chains": lambda t, svc, sep: t.replace(
        "*filter\n", "*filter\n:KUBE-EXTERNAL-SERVICES - [0:0]\n-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "
        "\"shop/gone has no endpoints\" -m addrtype --dst-type LOCAL -m tcp --dport 31081 -j REJECT\n"),
    "a chain named like another's start": lambda t, svc, sep: _edit(t, f"-A {svc} ", lambda line: [
        line, f"-A {svc}X -j KUBE-SEP-NOPE", f"-A {svc}"]),
    "a policy": lambda t, svc, sep: t.replace(":FORWARD ACCEPT", ":FORWARD DROP"),
    "no tables": lambda t, svc, sep: "# Generated by iptables-save\n",
    "empty": lambda t, svc, sep: "",
    "no nat table": lambda t, svc, sep: t[t.index("*filter"):],
    "not iptables-save": lambda t, svc, sep: "NAME  TYPE  CLUSTER-IP\nweb   ClusterIP 10.96.0.1\n",
}


@pytest.mark.parametrize("edit", EDITS)
@pytest.mark.parametrize("layout", ["restore", "saved", "old counters"])
def test_lazily_or_line_by_line_the_same(edit: str, layout: str) -> None:
    services = [*SMALL, ARTICLE]
    old = layout == "old counters"
    text = iptables_save(services, old=old, counters=old, saved=layout == "saved")
    text = EDITS[edit](text, WEB.svc(old), WEB.sep(WEB.endpoints[0], old))
    assert answers(lazily, text) == answers(line_by_line, text)


def test_random_damage_is_read_alike() -> None:
    """A character replaced anywhere, 400 times: lazily and line by line still agree."""
    text = iptables_save(SMALL, counters=True, saved=True)
    rng = random.Random(14)
    alphabet = [" ", '"', "\\", "\t", "\r", "\n", "é", "#", "*", ":", "[", "]", "-", "A", "0", "/", "\x1f", ""]
    for _ in range(400):
        at = rng.randrange(len(text))
        damaged = text[:at] + rng.choice(alphabet) + text[at + 1:]
        assert answers(lazily, damaged) == answers(line_by_line, damaged), repr(damaged[max(0, at - 60):at + 60])


def test_the_line_numbers_count_every_line() -> None:
    text = iptables_save(cluster(2000), counters=True)
    found = iptables.trace(iptables.parse(text), "shop", "web")
    lines = text.splitlines()
    for branch in found.branches:
        assert branch.line is not None and lines[branch.line - 1].endswith(f"-j {branch.chains[0]}")
        assert "shop/web" in lines[branch.line - 1]


# ---------------------------------------------------------------- splitting a rule into words


def old_split_rule(line: str) -> list[str]:
    """The regex reader split_rule had before its fast paths: what they must agree with."""
    if '"' not in line:
        return line.split()
    return [re.sub(r"\\(.)", r"\1", quoted) if bare == "" else bare
            for quoted, bare in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', line)]


def test_split_rule_reads_quotes_as_the_regex_does() -> None:
    rng = random.Random(15)
    for _ in range(5000):
        line = "".join(rng.choice(['a', 'b', ' ', ' ', '"', '"', '\\', '\t']) for _ in range(rng.randrange(14)))
        assert iptables.split_rule(line) == old_split_rule(line), repr(line)
    line = '-A KUBE-SVC-X -m comment --comment "ns/a -> 10.0.0.1:80" -m statistic --probability 0.5 -j KUBE-SEP-Y'
    assert iptables.split_rule(line)[5] == "ns/a -> 10.0.0.1:80"


def test_an_option_is_the_word_after_the_first_of_its_names() -> None:
    """Rule.option with list.index, against the loop it replaced."""

    def loop(args: list[str], names: tuple[str, ...]) -> str | None:
        for i, word in enumerate(args[:-1]):
            if word in names:
                return args[i + 1]
        return None

    rng = random.Random(16)
    for _ in range(5000):
        args = [rng.choice(["-j", "--jump", "-d", "x", "y"]) for _ in range(rng.randrange(7))]
        names = tuple(rng.sample(["-j", "--jump", "-d", "z"], rng.randrange(1, 4)))
        assert iptables.Rule("nat", "X", args, 1).option(*names) == loop(args, names), (args, names)


def _render(path: Path, labels: dict[str, str] | None = None) -> str:
    return draw(tree(path, labels))
