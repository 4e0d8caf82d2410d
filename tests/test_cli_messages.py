"""The CLI's messages (issue 10): `-` reads the answers (and `explain-service --from -` the dump) from
standard input, named `<stdin>` in every message; `schema` describes every key in config.example.yaml's
words; `explain-service` takes NAMESPACE/NAME, lists services, says plainly when kube-proxy has no rules
at all, refuses a dump cut off before COMMIT and traces on with etcd down.

Standard input is the real process's (subprocess.run with input=); the rest runs in this process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import lab
from tests.conftest import run_wizard
from tests.kubeproxy import Service, iptables_save
from tests.nodelab import IGNORE, LabNode
from wizard.answers import MAX_ANSWERS_BYTES, Answers
from wizard.cli import main

EXAMPLE = (lab.REPO / "config.example.yaml").read_text()
WEB = Service("default", "example-service", "10.254.124.145", 8080, ["172.30.38.2:8080", "172.30.46.2:8080"],
              node_port=30554)
SHOP = Service("shop", "web", "10.96.0.20", 80, ["10.244.1.5:8080"])
EMPTY = Service("default", "empty", "10.254.0.9", 80, [])
RULES = iptables_save([WEB, SHOP, EMPTY])


def wizard(*args: str, input: str | bytes | None = None, stdin: Any = None, timeout: float = 30,
           ) -> subprocess.CompletedProcess[str]:
    """The real command, standard input from `input` (text or bytes) or the file object `stdin`."""
    env = {**os.environ, "PYTHONPATH": str(lab.REPO)}
    data = input.encode() if isinstance(input, str) else input
    done = subprocess.run(lab.wizard_argv(*args), input=data, stdin=stdin if data is None else None,
                          capture_output=True, timeout=timeout, env=env, cwd=lab.REPO)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


# ---------------------------------------------------------------- the answers from standard input


def test_validate_reads_standard_input() -> None:
    done = wizard("validate", "-", input=EXAMPLE)
    assert (done.returncode, done.stdout, done.stderr) == (0, "<stdin>: valid\n", "")


def test_problems_in_standard_input_are_named_stdin_with_line_and_column() -> None:
    done = wizard("validate", "-", input="version: 1\netcd:\n  endponts: []\nsmoke_test:\n  replicas: 2.5\n")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "<stdin>:3:3: unknown key 'etcd.endponts' — did you mean 'endpoints'?",
        "<stdin>:5:13: smoke_test.replicas must be a whole number — got 2.5; write it without a fraction",
    ]
    latin = wizard("validate", "-", input=b"version: 1\n# caf\xe9\n")
    assert latin.returncode == 2
    assert latin.stderr.startswith("<stdin>:2:6: byte 0xE9 is not UTF-8 (in Latin-1 it would be 'é') — save")
    empty = wizard("validate", "-", input="")
    assert empty.returncode == 2 and empty.stderr.startswith("<stdin>:1:1: standard input is empty — pipe in")


def test_standard_input_has_the_answers_files_size_limit(tmp_path: Path) -> None:
    """An endless input is refused after the limit, not read into memory: /dev/zero ends at once."""
    started = time.perf_counter()
    with open("/dev/zero", "rb") as zero:
        endless = wizard("validate", "-", stdin=zero)
    assert time.perf_counter() - started < 5
    assert endless.returncode == 2
    assert endless.stderr == ("<stdin>:1:1: standard input holds more than an answers file can be (256 KiB at "
                              "most) — pipe in an answers file only, or give its path instead of -\n")
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "#" * MAX_ANSWERS_BYTES + "\n")
    with big.open("rb") as redirected:  # `< big.yaml`: a regular file, refused by its size before reading
        done = wizard("validate", "-", stdin=redirected)
    assert done.returncode == 2 and done.stderr.startswith("<stdin>:1:1: standard input is 256 KiB, more than")


def test_plan_reads_standard_input(node: LabNode) -> None:
    before = node.snapshot(mtimes=True)
    argv = ["plan", "-", "--root", str(node.root), "--skip", "smoke"]
    done = run_wizard(*argv, env=node.env, netns=node.ns, input=EXAMPLE)
    from_file = run_wizard(*[a if a != "-" else "config.example.yaml" for a in argv], env=node.env, netns=node.ns)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would create /kube-centos/network/config" in done.stdout
    strip = re.compile(r"\d+(\.\d+)?\s*(ms|s)\b")  # elapsed times differ from run to run
    assert strip.sub("T", done.stdout) == strip.sub("T", from_file.stdout)
    assert node.snapshot(mtimes=True) == before and node.etcd.get("/kube-centos/network/config") is None


def test_apply_from_standard_input_needs_yes(node: LabNode) -> None:
    """Standard input is the answers, so there is nowhere to ask: apply - refuses without --yes, and
    says why, before anything is read or changed; with --yes it applies."""
    before = node.snapshot()
    refused = run_wizard("apply", "-", "--root", str(node.root), "--skip", "smoke", "--ignore-preflight-errors",
                         IGNORE, env=node.env, netns=node.ns, input=EXAMPLE)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr == ("error: apply - reads the answers from standard input, so it cannot ask there for "
                              "confirmation — review with `flannel-wizard plan -`, then run "
                              "`flannel-wizard apply - --yes`\n")
    assert node.snapshot() == before and node.etcd.get("/kube-centos/network/config") is None
    done = run_wizard("apply", "-", "--yes", "--root", str(node.root), "--only", "etcd", "--ignore-preflight-errors",
                      IGNORE, env=node.env, netns=node.ns, input=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert node.etcd.get("/kube-centos/network/config") is not None


def help_of(command: str) -> str:
    """`flannel-wizard COMMAND --help`, its whitespace folded (argparse wraps to the terminal's width)."""
    done = run_wizard(command, "--help")
    assert done.returncode == 0
    return " ".join(done.stdout.split())


def test_the_help_says_what_dash_means() -> None:
    for name in ("validate", "plan", "apply"):
        assert "- reads it from standard input" in help_of(name), name
    assert "needed without a terminal, and with FILE -" in help_of("apply")


# ---------------------------------------------------------------- schema: every key described


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else node


def _every_property(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, property) for every property of the answers and of every definition (backend variants too)."""
    out = [(f"(top).{k}", v) for k, v in schema["properties"].items()]
    for name, definition in schema["$defs"].items():
        out += [(f"{name}.{k}", v) for k, v in definition.get("properties", {}).items()]
    return out


def _example_comments() -> list[tuple[tuple[str, ...], str, str]]:
    """(key path, inline comment, comment lines right above) for every key of config.example.yaml."""
    out = []
    path: list[str] = []
    above: list[str] = []
    for line in EXAMPLE.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        match = re.match(r"^( *)([a-z_]+):(.*)$", line)
        if not match:
            above = []
            continue
        depth = len(match[1]) // 2
        path = path[:depth] + [match[2]]
        inline = match[3].split(" #", 1)[1].strip() if " #" in match[3] else ""
        out.append((tuple(path), inline, " ".join(above)))
        above = []
    return out


def _description(schema: dict[str, Any], path: tuple[str, ...]) -> str:
    node: dict[str, Any] = schema
    for key in path:
        node = _resolve(schema, node)
        if "oneOf" in node:  # the backend: the example's is vxlan
            node = schema["$defs"]["Vxlan"]
        node = node["properties"][key]
    return node["description"]


def test_schema_describes_every_key() -> None:
    done = run_wizard("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    properties = _every_property(schema)
    assert len(properties) > 70  # the sections, their keys, every backend's options
    missing = [where for where, prop in properties if not prop.get("description")]
    assert missing == []
    for variant in ("Vxlan", "HostGw", "Udp", "Ipip", "Wireguard"):  # each shown when its type is chosen
        assert schema["$defs"][variant]["description"]
    assert schema["$defs"]["Vxlan"]["description"] == (
        "vxlan options: vni (1), port (0 = kernel default 8472), gbp, direct_routing, learning, mtu.")


def test_schema_descriptions_are_config_example_yamls_words() -> None:
    """Every comment of config.example.yaml about a key (on its line, or the lines right above it) is
    in that key's description, word for word."""
    schema = Answers.model_json_schema()
    keys = _example_comments()
    assert len(keys) > 50
    inline = [(path, comment) for path, comment, _ in keys if comment]
    assert len(inline) >= 20
    for path, comment in inline:
        assert comment in _description(schema, path), (".".join(path), comment)
    above = [(path, text) for path, _, text in keys if text and path != ("version",)]  # not the file's header
    assert len(above) >= 8
    for path, text in above:
        assert text in _description(schema, path), (".".join(path), text)
    assert "set enabled: false on a node without one yet" in _description(schema, ("smoke_test", "enabled"))
    assert _description(schema, ("etcd", "prefix")) == ("flanneld reads PREFIX/config and leases subnets under "
                                                       "PREFIX/subnets/. Leading slash, no trailing slash, without "
                                                       "/config.")


# ---------------------------------------------------------------- explain-service


def test_explain_service_reads_the_dump_from_standard_input() -> None:
    done = wizard("explain-service", "default/example-service", "--from", "-", input=RULES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "default/example-service"
    assert done.stdout.endswith("2 endpoint(s) reached: 172.30.38.2:8080, 172.30.46.2:8080\n")
    listed = wizard("explain-service", "--list", "--from", "-", input=RULES)
    assert listed.returncode == 0 and "shop/web" in listed.stdout


def test_a_cut_off_dump_on_standard_input_is_refused_with_its_line() -> None:
    lines = RULES.splitlines()
    cut = "\n".join(lines[: lines.index("COMMIT") - 3]) + "\n"  # the copy stopped in the nat table
    done = wizard("explain-service", "example-service", "--from", "-", input=cut)
    assert done.returncode == 2 and done.stdout == ""
    last = len(cut.splitlines())
    assert done.stderr.startswith(f"error: <stdin> is cut off at line {last}: it ends inside table nat (line 2), "
                                  "without the table's COMMIT line — save the whole dump again")


def test_no_kube_proxy_rules_at_all_exits_1() -> None:
    for text in ("", "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\nCOMMIT\n"):
        done = wizard("explain-service", "example-service", "--from", "-", input=text)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: no kube-proxy rules in <stdin>: "), done.stderr
        assert "not iptables-save output" not in done.stderr and len(done.stderr.splitlines()) == 1
        listed = wizard("explain-service", "--list", "--from", "-", input=text)
        assert listed.returncode == 1 and listed.stderr == done.stderr


def test_standard_input_is_read_once() -> None:
    done = wizard("explain-service", "example-service", "--from", "-", "--answers", "-", input=RULES)
    assert done.returncode == 2
    assert done.stderr == "error: --from - and --answers - both read standard input — give one of them as a file\n"


def explain_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["explain-service", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    path = tmp_path / "node2.rules"
    path.write_text(RULES)
    return path


def test_namespace_slash_name_is_accepted(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain_cli("shop/web", "--from", str(dump), capsys=capsys)
    assert code == 0 and out.splitlines()[0] == "shop/web"
    same = explain_cli("web", "-n", "shop", "--from", str(dump), capsys=capsys)
    assert same == (0, out, "")
    agreeing = explain_cli("shop/web", "-n", "shop", "--from", str(dump), capsys=capsys)
    assert agreeing == (0, out, "")
    code, out, err = explain_cli("shop/web", "-n", "default", "--from", str(dump), capsys=capsys)
    assert (code, out) == (2, "")
    assert err == ("error: shop/web is in namespace shop, but -n says default — drop -n, or give the name alone: "
                   "`web -n default`\n")
    code, _, err = explain_cli("web", "--from", str(dump), capsys=capsys)
    assert code == 1 and "did you mean shop/web?" in err


def test_list_prints_a_table(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain_cli("--list", "--from", str(dump), capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "SERVICE                  CLUSTER IP               NODE PORT  ENDPOINTS",
        "default/empty            10.254.0.9:80/tcp        -          0 (kube-proxy rejects: no endpoints)",
        "default/example-service  10.254.124.145:8080/tcp  30554/tcp  2",
        "shop/web                 10.96.0.20:80/tcp        -          1",
    ]
    code, out, _ = explain_cli("--list", "-n", "shop", "--from", str(dump), capsys=capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["SERVICE", "shop/web"]
    code, out, err = explain_cli("--list", "-n", "kube-system", "--from", str(dump), capsys=capsys)
    assert (code, out) == (1, "")
    assert err == (f"error: no services in namespace kube-system in {dump} — namespaces with services: "
                   "default, shop\n")


def test_usage_mistakes_with_list_and_without_a_name(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, words in ((["--list", "web"], "--list lists every service, and takes no NAME (web)"),
                        (["--list", "--answers", "a.yaml"], "--list does not trace"),
                        ([], "which service? give NAME or NAMESPACE/NAME")):
        code, out, err = explain_cli(*args, "--from", str(dump), capsys=capsys)
        assert (code, out) == (2, "") and words in err, err


def test_a_fifo_is_refused_with_the_way_to_pipe_a_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--from <(ssh node2 iptables-save)` is a pipe: refused without blocking, pointing at `--from -`."""
    fifo = tmp_path / "rules.fifo"
    os.mkfifo(fifo)
    code, _, err = explain_cli("web", "--from", str(fifo), capsys=capsys)
    assert code == 2
    assert err == (f"error: {fifo}: is a named pipe (FIFO), not a dump of kube-proxy's rules — pipe it in instead: "
                   "`iptables-save | flannel-wizard explain-service NAME --from -`\n")
    code, _, err = explain_cli("web", "--from", str(tmp_path), capsys=capsys)
    assert code == 2 and err.startswith(f"error: {tmp_path}: is a directory, not a dump of kube-proxy's rules")


def test_etcd_down_warns_on_one_line_and_still_traces(dump: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"version: 1\netcd:\n  endpoints: ['http://127.0.0.1:{lab.free_port()}']\n")
    code, out, err = explain_cli("default/example-service", "--from", str(dump), "--answers", str(answers),
                                 capsys=capsys)
    assert code == 0 and out.endswith("2 endpoint(s) reached: 172.30.38.2:8080, 172.30.46.2:8080\n")
    assert len(err.splitlines()) == 1 and err.startswith("warning: no node subnets from etcd: ")


def test_explain_service_help_is_accurate() -> None:
    help_text = help_of("explain-service")
    for words in ("[NAMESPACE/]NAME", "or NAMESPACE/NAME", "--list", "- reads standard input",
                  "etcd not answering: a warning, and the trace without them", "not whole output of its tool",
                  "--mode {iptables,nftables,ipvs}", "nft list ruleset", "ipvsadm -S -n", "dual-stack",
                  "no kube-proxy rules at all", "exit codes: 0 a path to a pod"):
        assert words in help_text, words
