"""Write the fuzz corpus of answer files, tests/fuzz/answers/: hostile YAML, wrong types, bad bytes,
paths that leave the root, bad service names, and seeded random mutations of a valid file.

    .venv/bin/python tests/fuzz/make_corpus.py

Deterministic (no clock, a fixed seed): rerunning it rewrites the same files, so the corpus is
kept in the repository and a change to it shows in the diff. tests/test_answers_hostile.py runs
`flannel-wizard validate` on every file: exit 0 or 2, no traceback, each within 2 s. Files named
`ok-*` must be valid, `bad-*` must be refused, `type-*` (wrong types where some are
accepted, like 0 for a bool) and `mut-*` (random mutations) may be either.
Inputs too large to keep here (over the size limit, 1 MiB worst cases) are made by the test itself.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "answers"

# A complete, valid file in short form (the defaults of config.example.yaml, smoke test off so that
# a mutation-free file needs no cluster).
BASE = """\
version: 1
etcd:
  endpoints: ["http://127.0.0.1:2379"]
  prefix: /kube-centos/network
  api: v3
  ca_file: null
  cert_file: null
  key_file: null
  username: null
  password_env: null
  password_file: null
  timeout_s: 3
  on_existing: fail
network:
  cidr: 172.30.0.0/16
  subnet_len: 24
  subnet_min: null
  subnet_max: null
  service_cidr: 10.254.0.0/16
  backend:
    type: vxlan
    vni: 1
    port: 0
    gbp: false
    direct_routing: false
    learning: false
    mtu: null
flanneld:
  env_file: /etc/sysconfig/flanneld
  subnet_file: /run/flannel/subnet.env
  iface: null
  ip_masq: false
  service: flanneld
  wait_s: 30
docker:
  bridge: docker0
  opts_file: /run/docker_opts.env
  opts:
    individual: true
    combined: true
    combined_key: DOCKER_OPTS
    ip_masq: true
  daemon_json: /etc/docker/daemon.json
  service: docker
cgroup:
  driver: auto
  runtime: auto
  kubelet_config: /var/lib/kubelet/config.yaml
  kubelet_env: /etc/kubernetes/kubelet
  kubelet_service: kubelet
smoke_test:
  enabled: false
  kubeconfig: null
  namespace: default
  deployment: nginx
  image: nginx:1.9
  replicas: 2
  labels: {run: load-balancer-example}
  container_port: 80
  service: example-service
  service_port: 8080
  timeout_s: 120
  cleanup: true
"""

SECTIONS = ["etcd", "network", "flanneld", "docker", "cgroup", "smoke_test"]
PATH_KEYS = [
    ("etcd", "ca_file"), ("etcd", "cert_file"), ("etcd", "key_file"), ("etcd", "password_file"),
    ("flanneld", "env_file"), ("flanneld", "subnet_file"), ("docker", "opts_file"), ("docker", "daemon_json"),
    ("cgroup", "kubelet_config"), ("cgroup", "kubelet_env"), ("smoke_test", "kubeconfig"),
]
SERVICE_KEYS = [("flanneld", "service"), ("docker", "service"), ("cgroup", "kubelet_service")]

# Every wrong type, as YAML text.
WRONG = {
    "int": "7", "negative": "-1", "zero": "0", "float": "2.5", "bool": "true", "null": "null",
    "string": '"x"', "empty-string": '""', "list": "[1, 2]", "map": "{a: 1}", "empty-list": "[]",
    "empty-map": "{}", "date": "2024-01-01", "bad-date": "2024-13-45", "inf": ".inf", "nan": ".nan",
    "binary": "!!binary aGVsbG8=", "octal": "0o777", "hex": "0xFFFFFFFF", "sexagesimal": "1:30:00",
    "yes": "yes", "tilde": "~", "long-int": "1" + "0" * 40, "set": "!!set {a, b}",
}


def leaves(text: str) -> list[tuple[tuple[str, ...], str]]:
    """(path, value text) of every leaf in the indented BASE-like text."""
    out, stack = [], []
    for line in text.splitlines():
        indent = (len(line) - len(line.lstrip())) // 2
        key, _, value = line.strip().partition(":")
        stack[indent:] = [key]
        if value.strip():
            out.append((tuple(stack), value.strip()))
    return out


def with_values(values: dict[tuple[str, ...], str], base: str = BASE) -> str:
    """BASE with the leaves in `values` replaced (by path)."""
    lines, stack = [], []
    for line in base.splitlines():
        indent = (len(line) - len(line.lstrip())) // 2
        key, _, value = line.strip().partition(":")
        stack[indent:] = [key]
        if tuple(stack) in values:
            line = f"{'  ' * indent}{key}: {values[tuple(stack)]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def only(values: dict[tuple[str, ...], str]) -> str:
    """A short file: `version: 1` and just the leaves in `values`, nested by path."""
    lines, open_ = ["version: 1"], ()
    for path, value in sorted(values.items()):
        common = 0
        while common < min(len(open_), len(path) - 1) and open_[common] == path[common]:
            common += 1
        for depth in range(common, len(path) - 1):
            lines.append(f"{'  ' * depth}{path[depth]}:")
        lines.append(f"{'  ' * (len(path) - 1)}{path[-1]}: {value}")
        open_ = path[:-1]
    return "\n".join(lines) + "\n"


def billion_laughs(levels: int = 9) -> str:
    text = 'version: 1\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        text += f"{name}: &{name} [{','.join(['*' + prev] * 9)}]\n"
        prev = name
    return text


def corpus() -> dict[str, bytes]:
    files: dict[str, str | bytes] = {}

    # ---- valid files (must exit 0)
    files["ok-base.yaml"] = BASE
    files["ok-minimal.yaml"] = "version: 1\n"
    files["ok-bom.yaml"] = "\ufeff" + BASE
    files["ok-crlf.yaml"] = BASE.replace("\n", "\r\n")
    files["bad-tab-after-colon.yaml"] = "version:\t1\n"
    files["ok-unicode-path.yaml"] = with_values({("flanneld", "env_file"): "/etc/sysconfig/flännel-ö"})
    files["ok-unit-names.yaml"] = with_values({("flanneld", "service"): "flanneld.service",
                                               ("docker", "service"): "docker@eth0",
                                               ("cgroup", "kubelet_service"): "kube\\x2dlet"})
    files["ok-small-aliases.yaml"] = "version: 1\nflanneld: {wait_s: &t 30}\nsmoke_test: {timeout_s: *t}\n"
    files["ok-anchor-reuse.yaml"] = "version: 1\nflanneld: &f {wait_s: 30}\n"
    files["ok-comments-after.yaml"] = BASE + "# the end\n" * 50
    files["ok-document-markers.yaml"] = "---\nversion: 1\n...\n"

    # ---- the hostile YAML of issue 9
    files["bad-billion-laughs.yaml"] = billion_laughs()
    files["bad-billion-laughs-small.yaml"] = billion_laughs(5)
    files["bad-laughs-as-key.yaml"] = billion_laughs() + "? *i\n: 1\n"
    files["bad-laughs-in-section.yaml"] = billion_laughs().replace("i: &i", "etcd: &i")
    files["bad-laughs-maps.yaml"] = "version: 1\na: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8}\n" + "".join(
        f"{c}: &{c} {{{', '.join(f'k{i}: *{p}' for i in range(9))}}}\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    files["bad-recursive-list.yaml"] = "version: 1\nx: &a [1, *a]\n"
    files["bad-recursive-map.yaml"] = "version: 1\netcd: &a\n  x: *a\n"
    files["bad-recursive-indirect.yaml"] = "version: 1\nx: &a\n  y: &b\n    z: [*a]\n"
    files["bad-recursive-merge.yaml"] = "version: 1\netcd: &a\n  <<: *a\n"
    files["bad-recursive-key.yaml"] = "version: 1\nx: &a {? *a : 1}\n"
    files["bad-undefined-alias.yaml"] = "version: 1\netcd: *nope\n"
    files["bad-duplicate-anchor.yaml"] = "version: 1\nx: &a 1\ny: &a 2\nz: *a\n"
    files["bad-alias-chain-deep.yaml"] = "version: 1\n" + "l0: &l0 [1]\n" + "".join(
        f"l{i}: &l{i} [[[[[[[[[[*l{i - 1}]]]]]]]]]]\n" for i in range(1, 30))
    for n in (65, 1000, 10000):
        files[f"bad-deep-flow-list-{n}.yaml"] = "version: 1\nx: " + "[" * n + "]" * n + "\n"
    for n in (65, 1000):
        files[f"bad-deep-flow-map-{n}.yaml"] = "version: 1\nx: " + "{a: " * n + "1" + "}" * n + "\n"
    files["bad-deep-flow-unclosed.yaml"] = "version: 1\nx: " + "[" * 5000 + "\n"
    # block nesting indents each level, so the file grows with the square of the depth: 150 is enough
    files["bad-deep-block-list-150.yaml"] = "version: 1\nx:\n" + "".join(" " * i + "-\n" for i in range(150))
    files["bad-deep-block-map-150.yaml"] = "version: 1\n" + "".join(" " * i + f"k{i}:\n" for i in range(150))
    files["bad-deep-block-inline-1000.yaml"] = "version: 1\nx:\n" + "- " * 1000 + "1\n"
    files["bad-deep-inline-dashes.yaml"] = "version: 1\nx: " + "- " * 1000 + "1\n"
    files["bad-too-many-values.yaml"] = "version: 1\nx: [" + ",".join(["0"] * 10_001) + "]\n"
    for digits in (4301, 5000):
        files[f"bad-int-{digits}-digits-replicas.yaml"] = f"version: 1\nsmoke_test:\n  replicas: {'9' * digits}\n"
    files["bad-int-4301-digits-version.yaml"] = f"version: {'1' * 4301}\n"
    files["bad-int-4301-digits-negative.yaml"] = f"version: 1\nnetwork:\n  subnet_len: -{'7' * 4301}\n"
    files["bad-int-4301-digits-key.yaml"] = f"version: 1\n{'8' * 4301}: x\n"
    files["ok-hex-long.yaml"] = "version: 1\n" + "# " + "0x" + "f" * 100 + "\n"
    files["bad-hex-huge.yaml"] = f"version: 1\nsmoke_test:\n  replicas: 0x{'f' * 5000}\n"
    files["bad-float-huge.yaml"] = f"version: 1\netcd:\n  timeout_s: 1e{'9' * 400}\n"

    # ---- floats where whole numbers go
    for key in [("smoke_test", "replicas"), ("network", "subnet_len"), ("network", "backend", "vni"),
                ("network", "backend", "port"), ("smoke_test", "container_port"), ("version",)]:
        files[f"bad-float-{'.'.join(key)}.yaml"] = with_values({key: "2.5"})
    files["ok-version-1.0.yaml"] = with_values({("version",): "1.0"})
    files["bad-version-2.yaml"] = with_values({("version",): "2"})
    files["bad-version-string.yaml"] = with_values({("version",): '"1"'})

    # ---- bytes: NUL, control characters, encodings
    base = BASE.encode()
    files["bad-nul-in-value.bin"] = base.replace(b"prefix: /kube-centos/network", b"prefix: /kube\x00centos")
    files["bad-nul-in-key.bin"] = base.replace(b"prefix:", b"pre\x00fix:")
    files["bad-nul-in-comment.bin"] = b"version: 1\n# \x00\n"
    files["bad-nul-first.bin"] = b"\x00version: 1\n"
    files["bad-all-nuls.bin"] = b"\x00" * 512
    for code in [*range(1, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]:
        files[f"bad-control-{code:02x}.bin"] = b"version: 1\netcd:\n  prefix: /a" + bytes([code]) + b"b\n"
    files["bad-c1-controls.yaml"] = "version: 1\netcd:\n  prefix: /a\u0080\u0090\u009fb\n"
    files["bad-noncharacter-fffe.yaml"] = "version: 1\n# \ufffe\n"
    files["bad-noncharacter-ffff.yaml"] = "version: 1\nx: \uffff\n"
    files["bad-random-binary.bin"] = random.Random(1).randbytes(2048)
    files["bad-elf-header.bin"] = b"\x7fELF\x02\x01\x01\x00" + bytes(56)
    files["bad-gzip.bin"] = b"\x1f\x8b\x08\x00" + bytes(20)
    files["bad-latin1-comment.bin"] = b"version: 1\n# caf\xe9\n"
    files["bad-latin1-value.bin"] = b"version: 1\netcd:\n  username: jos\xe9\n"
    files["bad-latin1-key.bin"] = b"version: 1\n\xe9tcd: {}\n"
    files["bad-latin1-path.bin"] = base.replace(b"/etc/sysconfig/flanneld", b"/etc/sysconfig/fl\xe4nneld")
    files["bad-utf8-truncated.bin"] = b"version: 1\nx: caf\xc3"
    files["bad-utf8-overlong.bin"] = b"version: 1\nx: \xc0\xaf\n"
    files["bad-utf8-surrogate.bin"] = b"version: 1\nx: \xed\xa0\x80\n"
    files["bad-utf8-lone-continuation.bin"] = b"version: 1\nx: \x80\n"
    files["bad-utf8-ff.bin"] = b"version: 1\nx: \xff\n"
    files["bad-utf8-beyond-10ffff.bin"] = b"version: 1\nx: \xf4\x90\x80\x80\n"
    files["bad-utf16le-bom.bin"] = "\ufeffversion: 1\n".encode("utf-16-le")
    files["bad-utf16be-bom.bin"] = "\ufeffversion: 1\n".encode("utf-16-be")
    files["bad-utf16-no-bom.bin"] = "version: 1\n".encode("utf-16-le")
    files["bad-utf32le-bom.bin"] = "\ufeffversion: 1\n".encode("utf-32-le")
    files["bad-utf32be-bom.bin"] = "\ufeffversion: 1\n".encode("utf-32-be")
    files["bad-bom-twice.yaml"] = "\ufeff\ufeffversion: 1\n"
    files["bad-bom-middle.yaml"] = "version: 1\n\ufeffetcd: {}\n"
    files["ok-cr-only-lines.bin"] = base.replace(b"\n", b"\r")
    files["ok-nel-lines.yaml"] = BASE.replace("\n", "\u0085")
    files["ok-line-separator.yaml"] = BASE.replace("\n", "\u2028")

    # ---- tabs
    files["bad-tab-indent.yaml"] = "version: 1\netcd:\n\tprefix: /x\n"
    files["bad-tab-mixed.yaml"] = "version: 1\netcd:\n  \tprefix: /x\n"
    files["bad-tab-in-flow.yaml"] = "version: 1\netcd: {prefix:\t/x,\tapi: v3}\n"
    files["bad-tab-in-value.yaml"] = 'version: 1\netcd:\n  prefix: "/a\\tb"\n'

    # ---- duplicate keys
    files["bad-duplicate-top.yaml"] = BASE + "etcd: {}\n"
    files["bad-duplicate-nested.yaml"] = "version: 1\nnetwork:\n  cidr: 10.0.0.0/16\n  cidr: 10.1.0.0/16\n"
    files["bad-duplicate-version.yaml"] = "version: 1\nversion: 1\n"
    files["bad-duplicate-many.yaml"] = "version: 1\n" + "etcd: {}\n" * 200

    # ---- every key with every wrong type (one file per type: each key gets it)
    paths = [path for path, _ in leaves(BASE)]
    for name, value in WRONG.items():
        files[f"bad-type-{name}-every-key.yaml"] = with_values({p: value for p in paths})
        files[f"type-{name}-every-section.yaml"] = "version: 1\n" + "".join(f"{s}: {value}\n" for s in SECTIONS)
        for backend in ("vxlan", "udp", "ipip", "wireguard", "host-gw"):
            options = {"vxlan": ["vni", "port", "gbp", "direct_routing", "learning", "mtu"], "udp": ["port"],
                       "ipip": ["direct_routing"], "host-gw": ["vni"],
                       "wireguard": ["psk_env", "psk_file", "listen_port", "listen_port_v6", "mtu",
                                     "persistent_keepalive_interval", "mode"]}[backend]
            body = "".join(f"    {o}: {value}\n" for o in options)
            files[f"type-{name}-backend-{backend}.yaml"] = (
                f"version: 1\nnetwork:\n  backend:\n    type: {backend}\n{body}")
        files[f"type-{name}-backend-type.yaml"] = f"version: 1\nnetwork:\n  backend:\n    type: {value}\n"
        files[f"type-{name}-backend.yaml"] = f"version: 1\nnetwork:\n  backend: {value}\n"
        files[f"type-{name}-top.yaml"] = f"{value}\n"
        files[f"type-{name}-label-value.yaml"] = f"version: 1\nsmoke_test:\n  labels: {{run: {value}}}\n"

    # ---- paths: leaving the root, relative, not normalised, NUL, newlines, long, unicode
    bad_paths = {
        "dotdot": "/../../../tmp/x", "dotdot-middle": "/etc/../../tmp/x", "dotdot-end": "/etc/..",
        "relative": "etc/sysconfig/flanneld", "dot-relative": "./flanneld", "dotdot-relative": "../x",
        "home": "~/x", "windows": '"C:\\\\x"', "trailing-slash": "/etc/sysconfig/", "root": "/",
        "double-slash": "//etc//x", "dot": "/etc/./x", "nul-escape": '"/etc/x\\0y"', "newline-escape": '"/etc/x\\nFOO=1"',
        "tab-escape": '"/etc/x\\ty"', "space": '"/etc/my flanneld"', "long-name": "/" + "n" * 300,
        "long-path": "/a" * 300, "empty": '""', "dotdot-unicode": "/../ünï/x", "rtl-override": '"/etc/\\u202egnp.x"',
        "escaped-slash": '"/etc/\\x2e\\x2e/x"', "binary-dotdot": "!!binary Ly4uLy4uL3RtcC94",
    }
    for name, value in bad_paths.items():
        files[f"bad-path-{name}.yaml"] = only({(s, k): value for s, k in PATH_KEYS})
    files["bad-path-psk-file.yaml"] = "version: 1\nnetwork:\n  backend: {type: wireguard, psk_file: /../x}\n"

    # ---- service and other names
    bad_units = {
        "dotdot": "../../..", "slash": "a/b", "empty": '""', "dash": '"-flanneld"', "option": '"--force"',
        "dot": ".flanneld", "at-start": '"@x"', "template": "flanneld@", "socket": "docker.socket",
        "space": '"a b"', "unicode": "flännel", "long": "s" * 256, "newline": '"a\\nb"', "nul": '"a\\0b"',
        "star": '"flanneld*"', "only-suffix": ".service",
    }
    for name, value in bad_units.items():
        files[f"bad-unit-{name}.yaml"] = only({k: value for k in SERVICE_KEYS})
    for name, value in {"upper": "Nginx", "underscore": "my_app", "dash-start": '"-x"', "long": "a" * 300,
                        "dots": "a..b", "space": '"a b"', "empty": '""'}.items():
        files[f"bad-k8s-name-{name}.yaml"] = only({("smoke_test", "namespace"): value,
                                                         ("smoke_test", "deployment"): value,
                                                         ("smoke_test", "service"): value})
    for name, value in {"space": '"eth0 -etcd-endpoints=http://evil:2379"', "slash": "a/b", "long": "a" * 16,
                        "colon": '"eth0:1"', "dotdot": '".."', "newline": '"eth0\\nX=1"'}.items():
        files[f"bad-iface-{name}.yaml"] = only({("flanneld", "iface"): value})
    files["ok-iface-address.yaml"] = with_values({("flanneld", "iface"): "10.0.0.5"})
    files["bad-username-space.yaml"] = "version: 1\netcd:\n  username: 'a -etcd-prefix=/x'\n  password_env: X\n"
    files["bad-password-env-name.yaml"] = "version: 1\netcd:\n  username: u\n  password_env: 'A B'\n"
    files["bad-endpoint-newline.yaml"] = 'version: 1\netcd:\n  endpoints: ["http://10.0.0.5:2379\\nFOO=1"]\n'
    files["bad-prefix-newline.yaml"] = 'version: 1\netcd:\n  prefix: "/kube\\nFOO=1"\n'
    files["bad-image-nul.yaml"] = 'version: 1\nsmoke_test:\n  image: "nginx\\0"\n'
    files["bad-label-newline.yaml"] = 'version: 1\nsmoke_test:\n  labels: {"a\\nb": c}\n'

    # ---- very long strings
    files["ok-long-prefix.yaml"] = f"version: 1\netcd:\n  prefix: /{'p' * 10_000}\n"
    files["bad-long-path.yaml"] = f"version: 1\nflanneld:\n  env_file: {'/abc' * 1100}\n"
    files["bad-long-key.yaml"] = f"version: 1\n{'k' * 2000}: 1\n"
    files["bad-long-quoted-key.yaml"] = f'version: 1\n"{"k" * 10_000}": 1\n'
    files["bad-long-unknown-in-section.yaml"] = f"version: 1\netcd:\n  {'e' * 500}: 1\n"
    files["bad-long-line-comment.yaml"] = "version: 1\n#" + "c" * 10_000 + "\nx: 1\n"
    files["bad-long-tag.yaml"] = f"version: 1\nx: !{'t' * 5000} 1\n"
    files["bad-long-anchor.yaml"] = f"version: 1\nx: &{'a' * 5000} 1\n"

    # ---- empty and nearly empty
    files["bad-empty.yaml"] = ""
    files["bad-only-newlines.yaml"] = "\n" * 100
    files["bad-only-spaces.yaml"] = " " * 100
    files["bad-only-comments.yaml"] = "# nothing here\n# at all\n"
    files["bad-only-document-start.yaml"] = "---\n"
    files["bad-only-document-end.yaml"] = "...\n"
    files["bad-null.yaml"] = "null\n"
    files["bad-tilde.yaml"] = "~\n"
    files["bad-scalar.yaml"] = "hello\n"
    files["bad-list.yaml"] = "- version: 1\n"
    files["bad-two-documents.yaml"] = "version: 1\n---\nversion: 1\n"
    files["bad-many-documents.yaml"] = "---\n" * 1000
    files["bad-directory-like-name.yaml"] = with_values({("flanneld", "env_file"): "/etc/sysconfig/flanneld/",
                                                        ("docker", "daemon_json"): "/etc/docker/"})

    # ---- YAML features an answers file does not use
    files["bad-python-object.yaml"] = "version: 1\nx: !!python/object/apply:os.system ['true']\n"
    files["bad-python-name.yaml"] = "version: 1\nx: !!python/name:os.system\n"
    files["bad-unknown-tag.yaml"] = "version: 1\netcd: !foo {prefix: /x}\n"
    files["bad-local-tag-scalar.yaml"] = "version: 1\nx: !foo bar\n"
    files["bad-omap.yaml"] = "version: 1\netcd: !!omap [{prefix: /x}]\n"
    files["bad-pairs.yaml"] = "version: 1\netcd: !!pairs [{prefix: /x}]\n"
    files["bad-merge-key.yaml"] = "version: 1\nbase: &b {prefix: /x}\netcd:\n  <<: *b\n"
    files["bad-complex-key.yaml"] = "version: 1\n? [etcd, network]\n: 1\n"
    files["bad-complex-map-key.yaml"] = "version: 1\n? {a: 1}\n: 1\n"
    files["bad-null-key.yaml"] = "version: 1\n~: 1\nnull: 2\n"
    files["bad-bool-key.yaml"] = "version: 1\nyes: 1\ntrue: 2\n"
    files["bad-int-keys.yaml"] = "version: 1\n1: a\n2: b\n"
    files["bad-float-key.yaml"] = "version: 1\n1.5: a\n"
    files["bad-date-key.yaml"] = "version: 1\n2024-13-45: a\n"
    files["bad-yaml-directive.yaml"] = "%YAML 1.1\n---\nversion: 1\nx: 1\n"
    files["bad-yaml-directive-2.yaml"] = "%YAML 2.0\n---\nversion: 1\n"
    files["bad-tag-directive.yaml"] = "%TAG !e! tag:example.com,2000:\n---\nversion: 1\nx: !e!foo 1\n"
    files["bad-unclosed-quote.yaml"] = 'version: 1\netcd:\n  prefix: "/x\n'
    files["bad-unclosed-flow.yaml"] = "version: 1\netcd: {prefix: /x\n"
    files["bad-bad-escape.yaml"] = 'version: 1\netcd:\n  prefix: "\\q"\n'
    files["bad-bad-unicode-escape.yaml"] = 'version: 1\netcd:\n  prefix: "\\U0011FFFF"\n'
    files["bad-surrogate-escape.yaml"] = 'version: 1\netcd:\n  prefix: "\\uD800"\n'
    files["bad-bad-indent.yaml"] = "version: 1\netcd:\n  prefix: /x\n   api: v3\n"
    files["bad-block-scalar-path.yaml"] = "version: 1\nflanneld:\n  env_file: |\n    /etc/x\n    FOO=1\n"
    files["bad-binary-invalid.yaml"] = "version: 1\nx: !!binary '!!!'\n"
    files["bad-timestamp-values.yaml"] = with_values({("flanneld", "env_file"): "2001-12-14t21:59:43.10-05:00",
                                                     ("etcd", "prefix"): "2002-12-14"})
    files["bad-set-section.yaml"] = "version: 1\netcd: !!set {prefix, api}\n"
    files["bad-str-tag-on-list.yaml"] = "version: 1\netcd: !!str [1]\n"
    files["bad-int-tag-on-text.yaml"] = "version: 1\nsmoke_test:\n  replicas: !!int two\n"
    files["bad-float-tag-on-text.yaml"] = "version: 1\netcd:\n  timeout_s: !!float soon\n"
    files["bad-many-aliases-small.yaml"] = "version: 1\nv: &v 1\nx: [" + ", ".join(["*v"] * 5000) + "]\n"
    files["bad-alias-in-every-key.yaml"] = "version: 1\nbad: &b [1]\n" + with_values({p: "*b" for p in paths}).split("\n", 1)[1]

    # ---- seeded random mutations of the valid file
    rng = random.Random(9)
    hostile = [b"\x00", b"\t", b"\xff", b"\xe9", b"[", b"{", b"&a ", b"*a", b"*b", b"!!python/none ", b"'", b'"', b"\\",
               b"..", b"/../", b"?", b":", b"- ", b"#", b"\r", b"\x1b", b"---\n", b"%", b"@", b"`", b"|", b">",
               b"9" * 4400, b"\xef\xbb\xbf", b"\xc3", b"&a [*a]", b"<<: *a\n"]
    for i in range(80):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            op = rng.choice(["insert", "delete", "replace", "dup-line", "drop-line", "truncate", "swap", "value"])
            at = rng.randrange(len(data) or 1)
            if op == "insert":
                data[at:at] = rng.choice(hostile)
            elif op == "delete":
                del data[at:at + rng.randint(1, 8)]
            elif op == "replace":
                data[at:at + 1] = bytes([rng.randrange(256)])
            elif op in ("dup-line", "drop-line", "swap"):
                lines = bytes(data).split(b"\n")
                j = rng.randrange(len(lines))
                if op == "dup-line":
                    lines.insert(j, lines[j])
                elif op == "drop-line":
                    del lines[j]
                else:
                    k = rng.randrange(len(lines))
                    lines[j], lines[k] = lines[k], lines[j]
                data = bytearray(b"\n".join(lines))
            elif op == "truncate":
                del data[at:]
            else:
                path = rng.choice(paths)
                wrong = rng.choice([*WRONG.values(), *bad_paths.values(), *bad_units.values()])
                data = bytearray(with_values({path: wrong}, bytes(data).decode("utf-8", "replace")).encode())
        files[f"mut-{i:03d}.bin"] = bytes(data)

    return {name: text.encode() if isinstance(text, str) else text for name, text in files.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.suffix in (".yaml", ".bin"):
            old.unlink()
    files = corpus()
    for name, data in sorted(files.items()):
        (OUT / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"{len(files)} files, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
