"""Hostile answer files (issue 9, points 3, 5 and 6; issue 10's `validate` messages): every input
exits 0 or 2 within 2 s with `FILE:LINE:COL: what — how to fix`, never a traceback, never a hang.

The fuzz corpus lives in tests/fuzz/answers/ (written by tests/fuzz/make_corpus.py); the inputs too
large to keep in the repository (over the size limit, the worst cases at the limit) are made here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from tests import lab
from tests.conftest import run_wizard
from wizard import answers, yamlpos
from wizard.cli import main
from wizard.errors import AnswersInvalidError, InputError

CORPUS = Path(__file__).resolve().parent / "fuzz" / "answers"
FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".yaml", ".bin"))
HOUSE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<what>.+) — (?P<fix>.+)$")
DEADLINE = 2.0


def validate(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
    """`flannel-wizard validate PATH` in this process: exit code, stdout, stderr, seconds."""
    started = time.perf_counter()
    code = main(["validate", str(path)])
    took = time.perf_counter() - started
    out, err = capsys.readouterr()
    return code, out, err, took


def house_lines(err: str, path: Path | str) -> list[re.Match[str]]:
    """Every line of stderr in the house format, naming `path`."""
    lines = err.strip().splitlines()
    assert lines, "no message"
    matches = []
    for line in lines:
        match = HOUSE.match(line)
        assert match, f"not FILE:LINE:COL: what — fix: {line!r}"
        assert match["file"] == str(path), line
        assert len(line) < 1200, f"message too long ({len(line)} chars)"
        matches.append(match)
    return matches


# ---------------------------------------------------------------- the corpus


def test_the_corpus_is_what_the_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS.parent / "make_corpus.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.corpus()
    assert sorted(expected) == FILES, "rerun tests/fuzz/make_corpus.py"
    changed = [name for name, data in expected.items() if (CORPUS / name).read_bytes() != data]
    assert not changed, f"rerun tests/fuzz/make_corpus.py: {changed[:5]}"
    assert sum(len(d) for d in expected.values()) < 512 * 1024  # kept small: it lives in the repository


@pytest.mark.parametrize("name", FILES)
def test_every_corpus_file_exits_0_or_2_quickly_with_house_messages(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / name
    code, out, err, took = validate(path, capsys)
    assert took <= DEADLINE, f"{name} took {took:.2f}s"
    assert "Traceback" not in err + out
    if name.startswith("ok-"):
        assert (code, err) == (0, ""), err
        assert out == f"{path}: valid\n"
    elif name.startswith("bad-"):
        assert code == 2, out
    else:
        assert code in (0, 2), err
    if code == 2:
        house_lines(err, path)
        assert out == ""


SUBPROCESS_SAMPLE = ["bad-billion-laughs.yaml", "bad-recursive-map.yaml", "bad-deep-flow-list-1000.yaml",
                     "bad-deep-block-map-150.yaml", "bad-int-4301-digits-replicas.yaml", "bad-nul-in-value.bin",
                     "bad-latin1-value.bin", "bad-utf16le-bom.bin", "bad-path-dotdot.yaml", "ok-base.yaml"]


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_a_sample_through_the_real_command(name: str) -> None:
    started = time.perf_counter()
    result = run_wizard("validate", str(CORPUS / name), timeout=30)
    took = time.perf_counter() - started
    assert took <= DEADLINE, f"{name} took {took:.2f}s, interpreter start included"
    assert result.returncode == (0 if name.startswith("ok-") else 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        house_lines(result.stderr, CORPUS / name)


# ---------------------------------------------------------------- hostile YAML, one by one


def billion_laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{','.join(['*' + prev] * 9)}]\n"
    return text


def test_billion_laughs_is_refused_at_once_without_growing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = billion_laughs()
    assert len(text) < 400  # the classic: a few hundred bytes, 10**9 strings once expanded
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    tracemalloc.start()
    try:
        code, _out, err, took = validate(path, capsys)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2 and took < 0.5, (code, took)
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"
    (match,) = house_lines(err, path)
    assert "alias *" in match["what"] and "expands to more than" in match["what"]
    assert int(match["line"]) > 1  # at the alias that expands, not at the top of the file


@pytest.mark.parametrize(("text", "line", "col"), [
    ("version: 1\nx: &a [1, *a]\n", 2, 11),
    ("version: 1\netcd: &a\n  x: *a\n", 3, 6),
    ("version: 1\nx: &a\n  y: &b\n    z: [*a]\n", 4, 9),
    ("version: 1\nx: &a {? *a : 1}\n", 2, 10),
])
def test_recursive_anchors_are_a_message(text: str, line: int, col: int, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(text)
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    (match,) = house_lines(err, path)
    assert (int(match["line"]), int(match["col"])) == (line, col), err
    assert "refers to the collection it is in" in match["what"]


@pytest.mark.parametrize("text", [
    "version: 1\nx: " + "[" * 1000 + "]" * 1000 + "\n",
    "version: 1\nx: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
    "version: 1\nx:\n" + "- " * 1000 + "1\n",
    "version: 1\n" + "".join(" " * i + f"k{i}:\n" for i in range(600)),  # 1000 would pass the size limit
    "version: 1\nx: " + "[" * 100_000 + "\n",
], ids=["lists-1000", "maps-1000", "block-lists-1000", "block-maps-600", "unclosed-100000"])
def test_deep_nesting_is_a_message_not_a_recursion_error(text: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code, _out, err, took = validate(path, capsys)
    assert code == 2 and took < DEADLINE
    (match,) = house_lines(err, path)
    assert f"nesting deeper than {yamlpos.MAX_DEPTH} levels" in match["what"]


def test_aliases_that_nest_deep_once_expanded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # each line is shallow; following the aliases goes 300 levels down
    text = "version: 1\nl0: &l0 [1]\n" + "".join(f"l{i}: &l{i} [[[[[[[[[[*l{i - 1}]]]]]]]]]]\n" for i in range(1, 30))
    path = tmp_path / "chain.yaml"
    path.write_text(text)
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    assert "nests deeper than" in house_lines(err, path)[0]["what"]


@pytest.mark.parametrize("value", ["9" * 4301, "-" + "7" * 5000, "0x" + "f" * 5000])
def test_integers_beyond_pythons_limit_are_a_message(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "int.yaml"
    path.write_text(f"version: 1\nsmoke_test:\n  replicas: {value}\n")
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    (match,) = house_lines(err, path)
    assert (match["line"], match["col"]) == ("3", "13")
    assert "is too long to read" in match["what"]


@pytest.mark.parametrize(("data", "line", "col", "what"), [
    (b"version: 1\netcd:\n  prefix: /a\x00b\n", 3, 13, "U+0000 (NUL)"),
    (b"version: 1\n# \x1b[31m\n", 2, 3, "U+001B (ESC)"),
    (b"\x7fELF\x02\x01\x01\x00", 1, 1, "U+007F (DEL)"),
    (b"version: 1\nx: caf\xc3\xa9 \x07\n", 2, 9, "U+0007 (BEL)"),
])
def test_binary_and_control_characters_are_located(data: bytes, line: int, col: int, what: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(data)
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    (match,) = house_lines(err, path)
    assert (int(match["line"]), int(match["col"])) == (line, col), err
    assert what in match["what"]


@pytest.mark.parametrize(("data", "line", "col", "byte"), [
    (b"version: 1\netcd:\n  username: jos\xe9\n", 3, 16, "0xE9"),
    (b"version: 1\n# caf\xc3\xa9 na\xefve\n", 2, 10, "0xEF"),  # columns count characters: the é before is one
    (b"\xff\xfeversion: 1\n", 1, 1, "UTF-16"),
    (b"version: 1\nx: caf\xc3", 2, 7, "0xC3"),
])
def test_non_utf8_names_the_bytes_position(data: bytes, line: int, col: int, byte: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    (match,) = house_lines(err, path)
    assert (int(match["line"]), int(match["col"])) == (line, col), err
    assert byte in match["what"]


def test_a_bom_and_crlf_are_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\r\nsmoke_test:\r\n  replicas: 3\r\n")
    assert validate(path, capsys)[:2] == (0, f"{path}: valid\n")


# ---------------------------------------------------------------- what is given as the answers file


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\n" + "# padding\n" * (answers.MAX_ANSWERS_BYTES // 10))
    def never(*_args: object) -> None:
        raise AssertionError("parsed a file over the size limit")

    monkeypatch.setattr(yamlpos, "load", never)
    code, _out, err, took = validate(path, capsys)
    assert code == 2 and took < 0.5
    (match,) = house_lines(err, path)
    assert "more than an answers file can be" in match["what"]


# The slowest inputs just under the size limit: PyYAML is pure Python here, so the limits on size,
# nesting and values are what keep each one well inside the deadline.
WORST = {
    "flat-list": lambda n: "[" + "0," * (n // 2) + "0]",
    "block-lines": lambda n: "version: 1\netcd:\n  prefix: |\n" + "    x\n" * (n // 6),
    "blank-lines": lambda n: "version: 1\n" + "\n" * n,
    "comment-lines": lambda n: "#\n" * (n // 2),
    "plain-multiline": lambda n: "version: 1\nx: " + "a\n   " * (n // 5),
    "escapes": lambda n: 'x: "' + "\\x41" * (n // 4 - 2) + '"',
    "flow-map": lambda n: "{" + "a: 1, " * (n // 6) + "}",
    "block-seq": lambda n: "- 0\n" * (n // 4),
    "open-brackets": lambda n: "[" * n,
    "aliases": lambda n: "a: &a 1\nb: [" + "*a, " * (n // 4 - 10) + "]",
    "folded": lambda n: "version: 1\netcd:\n  prefix: >\n" + "    x\n\n" * (n // 7),
}


@pytest.mark.parametrize("kind", sorted(WORST))
def test_worst_cases_at_the_size_limit_stay_fast(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(WORST[kind](answers.MAX_ANSWERS_BYTES - 64))
    assert path.stat().st_size <= answers.MAX_ANSWERS_BYTES
    code, out, err, took = validate(path, capsys)
    assert code in (0, 2) and took < DEADLINE / 2, (code, took)
    if code == 2:
        house_lines(err, path)
    print(f"{kind}: {took:.3f}s")


def test_a_directory_is_refused_by_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err, _took = validate(tmp_path, capsys)
    assert code == 2
    (match,) = house_lines(err, tmp_path)
    assert match["what"] == "is a directory, not an answers file"


def test_devices_sockets_and_links_to_them_are_refused_by_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")  # read, it would never end
    sock_path = tmp_path / "s.yaml"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        for path, kind in ((Path("/dev/null"), "a character device"), (zero, "a character device"),
                           (sock_path, "a socket")):
            code, _out, err, took = validate(path, capsys)
            assert code == 2 and took < 0.5
            assert house_lines(err, path)[0]["what"] == f"is {kind}, not an answers file"


def test_missing_and_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    code, _out, err, _took = validate(missing, capsys)
    assert code == 2 and house_lines(err, missing)[0]["what"] == "no such file"
    inside = tmp_path / "file" / "x.yaml"
    (tmp_path / "file").write_text("")
    code, _out, err, _took = validate(inside, capsys)
    assert code == 2 and "not a directory" in house_lines(err, inside)[0]["what"]


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    """Nobody writes to the FIFO: opening it for reading would block forever. A subprocess with a
    timeout, so that a hang fails this test instead of hanging the run."""
    fifo = _fifo(tmp_path)
    for argv in (["validate", str(fifo)], ["plan", str(fifo), "--root", str(tmp_path / "root")]):
        started = time.perf_counter()
        result = run_wizard(*argv, timeout=10)
        assert time.perf_counter() - started < DEADLINE
        assert result.returncode == 2, result.stderr
        (match,) = house_lines(result.stderr, fifo)
        assert match["what"] == "is a named pipe (FIFO), not an answers file"
    assert not (tmp_path / "root").exists()


def test_the_wizard_and_the_demo_refuse_a_fifo_before_opening(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    code = (
        "import sys\n"
        "from wizard.session import Session\n"
        "from wizard.errors import AnswersInvalidError\n"
        "try:\n"
        f"    Session.from_file(None, {str(fifo)!r})\n"
        "except AnswersInvalidError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=lab.REPO, timeout=10)
    assert "is a named pipe (FIFO), not an answers file" in result.stdout, result.stdout + result.stderr


def test_a_secret_file_that_is_a_fifo_binary_or_huge_is_a_message(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    latin = tmp_path / "latin"
    latin.write_bytes(b"s3cr\xe9t\n")
    two_lines = tmp_path / "two"
    two_lines.write_text("one\ntwo\n")
    huge = tmp_path / "huge"
    huge.write_bytes(b"x" * (answers.MAX_SECRET_BYTES + 1))
    good = tmp_path / "good"
    good.write_text("s3cr\u00e9t\n")
    code = (
        "import sys\n"
        "from wizard.answers import read_secret\n"
        "from wizard.errors import InputError\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        print('ok', repr(read_secret(None, path)))\n"
        "    except InputError as exc:\n"
        "        print('refused', exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(fifo), str(binary), str(latin), str(two_lines), str(huge),
                             str(good)], capture_output=True, text=True, cwd=lab.REPO, timeout=10)
    lines = result.stdout.splitlines()
    assert len(lines) == 6, result.stdout + result.stderr
    assert "is a named pipe (FIFO)" in lines[0]
    assert lines[1].startswith("refused") and "byte 0x89 at 1:1 is not UTF-8" in lines[1]
    assert "byte 0xE9 at 1:5 is not UTF-8" in lines[2]
    assert lines[3].startswith("refused") and "control character" in lines[3]
    assert lines[4].startswith("refused") and "more than a secret file can be" in lines[4]
    assert lines[5] == "ok 's3cr\u00e9t'"
    for line in lines[:5]:
        assert " — " in line


# ---------------------------------------------------------------- issue 10: validate's messages


def test_validate_replicas_2_5_is_in_the_house_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\nsmoke_test:\n  replicas: 2.5\n")
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    assert err == f"{path}:3:13: smoke_test.replicas must be a whole number — got 2.5; write it without a fraction\n"


def test_every_pydantic_error_kind_gets_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "version: 1\n"
        "etcd:\n  endpoints: []\n  timeout_s: .inf\n  api: [v3]\n"
        "network:\n  subnet_len: 2.5\n  backend: {type: vxlan, vni: 1e3, gbp: maybe}\n"
        "smoke_test:\n  replicas: .nan\n  labels: [1]\n  enabled: 7\n")
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    for match in house_lines(err, path):
        assert "Input should" not in match["what"], match[0]  # pydantic's wording alone is not a message


# ---------------------------------------------------------------- confinement: paths and names in the answers

PATH_KEYS = [("etcd", "ca_file"), ("etcd", "cert_file"), ("etcd", "key_file"), ("etcd", "password_file"),
             ("flanneld", "env_file"), ("flanneld", "subnet_file"), ("docker", "opts_file"), ("docker", "daemon_json"),
             ("cgroup", "kubelet_config"), ("cgroup", "kubelet_env"), ("smoke_test", "kubeconfig")]


def test_the_path_keys_are_every_path_in_the_model() -> None:
    found = set()
    for section, model in answers.Answers.model_fields.items():
        sub = model.annotation
        for name in getattr(sub, "model_fields", {}):
            if name.endswith(("_file", "_json", "_config", "_env", "kubeconfig")) and name not in ("password_env",):
                found.add((section, name))
    assert found == set(PATH_KEYS)
    assert "psk_file" in answers.Wireguard.model_fields  # checked separately below


@pytest.mark.parametrize(("value", "what"), [
    ("/../../../tmp/x", "leaves the root: '..' is not allowed in a node path"),
    ("/etc/../../tmp/x", "leaves the root"),
    ("etc/sysconfig/flanneld", "is not absolute"),
    ("~/x", "is not absolute"),
    ('"/etc/x\\0y"', "contains a NUL byte"),
    ('"/etc/x\\nFOO=1"', "contains the control character U+000A"),
    ("//etc//x", "is not normalised — write it as /etc/x"),
    ("/etc/./x", "is not normalised — write it as /etc/x"),
    ("/etc/sysconfig/", "is not normalised — write it as /etc/sysconfig"),
    ("/", "is a directory, not a file"),
    ('""', "is empty"),
    ("/" + "n" * 300, "longer than Linux allows"),
])
def test_every_path_in_the_answers_is_checked_at_its_key(value: str, what: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["version: 1"]
    where = {}
    for section in dict.fromkeys(s for s, _ in PATH_KEYS):
        lines.append(f"{section}:")
        for s, key in PATH_KEYS:
            if s == section:
                lines.append(f"  {key}: {value}")
                where[f"{s}.{key}"] = (len(lines), len(key) + 5)
    path = tmp_path / "paths.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    reported = {m["what"].split(" ", 1)[0]: m for m in house_lines(err, path)}
    assert set(reported) >= set(where), err
    for key, (line, col) in where.items():
        match = reported[key]
        assert (int(match["line"]), int(match["col"])) == (line, col), match[0]
        assert what in match[0], match[0]


def test_the_issues_example_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("version: 1\nflanneld:\n  env_file: /../../../tmp/x\n")
    code, _out, err, _took = validate(path, capsys)
    assert code == 2
    assert err == (f"{path}:3:13: flanneld.env_file '/../../../tmp/x' leaves the root: '..' is not allowed in a node "
                   "path — give an absolute path such as /etc/sysconfig/flanneld\n")


def test_psk_file_and_option_lines(capsys: pytest.CaptureFixture[str]) -> None:
    _answers, found = answers.check({"version": 1, "network": {"backend": {"type": "wireguard", "psk_file": "/../k"}}})
    assert [loc for loc, _k, _m in found] == [("network", "backend", "psk_file")]
    # written into FLANNEL_OPTIONS, which systemd splits at spaces: a space would add an option
    _answers, found = answers.check({"version": 1, "etcd": {"ca_file": "/etc/my ca.pem"}})
    assert any(loc == ("etcd", "ca_file") and "whitespace" in m for loc, _k, m in found)
    # the wizard reads these itself: a space is fine
    ok, found = answers.check({"version": 1, "etcd": {"username": "u", "password_file": "/root/my password"}})
    assert ok is not None, found


@pytest.mark.parametrize(("name", "ok"), [
    ("flanneld", True), ("flanneld.service", True), ("docker@eth0", True), ("kube\\x2dlet", True),
    ("a:b_c-d.e", True), ("x" * 247, True), ("x" * 248, False),
    ("../../..", False), ("a/b", False), ("", False), (".service", False), ("-flanneld", False), ("--force", False),
    (".hidden", False), ("@x", False), ("flanneld@", False), ("docker.socket", False), ("a b", False),
    ("flännel", False), ("flanneld*", False), ("a\nb", False),
])
def test_service_names_follow_systemds_unit_name_rules(name: str, ok: bool) -> None:
    for section, key in (("flanneld", "service"), ("docker", "service"), ("cgroup", "kubelet_service")):
        valid, found = answers.check({"version": 1, section: {key: name}})
        assert (valid is not None) == ok, (section, name, found)
        if not ok:
            ((loc, _kind, message),) = found
            assert loc == (section, key) and " — " in message


@pytest.mark.parametrize(("key", "value"), [
    (("smoke_test", "namespace"), "Default"), (("smoke_test", "service"), "1-service"),
    (("smoke_test", "deployment"), "-x"), (("flanneld", "iface"), "eth0 -etcd-endpoints=http://evil:2379"),
    (("flanneld", "iface"), "a/b"), (("etcd", "username"), "a -etcd-prefix=/x"), (("etcd", "password_env"), "A B"),
    (("etcd", "endpoints"), ["http://10.0.0.5:2379\nFOO=1"]), (("etcd", "prefix"), "/kube\nFOO=1"),
    (("smoke_test", "image"), "nginx\x00"), (("smoke_test", "labels"), {"a\nb": "c"}),
])
def test_values_that_would_smuggle_options_or_lines_are_refused(key: tuple[str, str], value: object) -> None:
    section, name = key
    extra = {"password_env": "X"} if name == "username" else {"username": "u"} if name == "password_env" else {}
    valid, found = answers.check({"version": 1, section: {name: value, **extra}})
    assert valid is None
    locs = [loc[:2] for loc, _k, _m in found]
    assert (section, name) in locs, found
    assert all("\n" not in m and " — " in m for _l, _k, m in found)


def test_good_values_still_pass() -> None:
    valid, found = answers.check({"version": 1, "flanneld": {"iface": "10.0.0.5", "env_file": "/etc/sysconfig/flännel"},
                                  "smoke_test": {"namespace": "kube-system", "deployment": "web.v2", "service": "web"}})
    assert valid is not None, found


def test_invalid_paths_leave_the_root_untouched(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\nflanneld:\n  env_file: /../../../x\ndocker:\n  opts_file: /../../y\n")
    result = run_wizard("plan", str(path), "--root", str(root))
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and list(root.iterdir()) == []


# ---------------------------------------------------------------- the wizard's prefill reads the same way


def test_prefill_uses_the_data_as_read(tmp_path: Path) -> None:
    from wizard.session import Session

    session = Session.from_file(None, str(lab.REPO / "config.example.yaml"))  # type: ignore[arg-type]
    assert session.file_problems == []
    assert session.draft["network"]["cidr"] == "172.30.0.0/16"
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text("version: 1\n" + billion_laughs())
    session = Session.from_file(None, str(laughs))  # type: ignore[arg-type]
    assert [p.message.split(" ", 1)[0] for p in session.file_problems] == ["alias"]
    with pytest.raises(AnswersInvalidError):
        Session.from_file(None, str(tmp_path))  # type: ignore[arg-type]
    assert issubclass(AnswersInvalidError, InputError)  # exit 2
