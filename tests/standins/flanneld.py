"""Stand-in for the `flanneld` binary, because flanneld cannot run here (it needs a real overlay, and
no Debian package ships it). It acts on the *real* etcd the tests start, the way upstream flanneld does:

- `flanneld --version` (or `-version`) prints the version to stderr and exits, as main.go does;
  FW_FLANNELD_VERSION picks it (default v0.26.1; the CentOS 7 package printed `0.7.1`).
- otherwise it reads its settings as main.go does: flags first, then for each flag not given the
  `FLANNELD_<FLAG>` variable (upper case, dashes as underscores; empty means unset; coreos/pkg
  flagutil.SetFlagsFromEnv). It never reads FLANNEL_ETCD_*: that is the CentOS wrapper's business.
- it reads PREFIX/config through the API its version reads (the v2 keys API before v0.18.0, v3 from
  then on, each over plain HTTP so the stand-in needs only the standard library), with the error text
  that flanneld gives when the key is not in that store; takes a free subnet as a lease under
  PREFIX/subnets/ (keeping the one this PublicIP already holds) with a 24 h TTL, and writes the
  subnet file.

Run as a program it is the binary on PATH (`flanneld --version` from the wizard); the systemctl
stand-in calls `start(args, env)` with the arguments and environment the unit gives it.

Test controls (from the test's environment, never from the unit's):
  FW_TEST_ROOT   the --root the wizard writes under (default /): file paths are taken under it
  FW_PUBLIC_IP   this node's PublicIP when neither -public-ip nor an -iface address gives one
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_VERSION = "v0.26.1"
BOOLEANS = frozenset({"ip-masq", "kube-subnet-mgr", "version", "iptables-forward-rules", "ip-blackhole-route"})
REPEATED = frozenset({"iface", "iface-regex"})
NOT_IN_V2 = "Couldn't fetch network config: 100: Key not found"
NOT_IN_V3 = "Couldn't fetch network config: flannel config not found in etcd store. Did you create your config using etcdv3 API?"


class Exit(Exception):
    """flanneld exits: its last log line and the status."""


def root() -> Path:
    return Path(os.environ.get("FW_TEST_ROOT", "/"))


def under_root(path: str) -> Path:
    return root() / path.lstrip("/")


def version() -> tuple[int, int, int]:
    text = os.environ.get("FW_FLANNELD_VERSION", DEFAULT_VERSION)
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else (0, 26, 1)


def parse_flags(args: list[str]) -> dict[str, list[str]]:
    """Go's flag package: `-name=value`, `-name value`, `--name`; a boolean never takes the next word."""
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise Exit(f"flag provided but not defined: {arg}")
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq:
            if name in BOOLEANS:
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise Exit(f"flag needs an argument: -{name}")
        out.setdefault(name, []).append(value)
    return out


def settings(args: list[str], env: dict[str, str]) -> dict[str, list[str]]:
    """Flags, then FLANNELD_<FLAG> for each flag not given on the command line."""
    flags = parse_flags(args)
    for name in ("etcd-endpoints", "etcd-prefix", "etcd-keyfile", "etcd-certfile", "etcd-cafile", "etcd-username",
                 "etcd-password", "iface", "public-ip", "subnet-file", "ip-masq"):
        value = env.get("FLANNELD_" + name.upper().replace("-", "_"), "")
        if name not in flags and value:
            flags[name] = [value]
    return flags


def one(flags: dict[str, list[str]], name: str, default: str = "") -> str:
    values = flags.get(name)
    return values[-1] if values else default


class Etcd:
    """The etcd API this flanneld version reads, over HTTP; stdlib only so the stand-in starts fast."""

    def __init__(self, flags: dict[str, list[str]], v2: bool) -> None:
        self.endpoint = one(flags, "etcd-endpoints", "http://127.0.0.1:2379").split(",")[0]
        self.v2 = v2
        self.context = None
        key, cert = one(flags, "etcd-keyfile"), one(flags, "etcd-certfile")
        if self.endpoint.startswith("https://"):
            ca = one(flags, "etcd-cafile")
            self.context = ssl.create_default_context(cafile=str(under_root(ca)) if ca else None)
            if key and cert:  # flannel uses TLS client auth only with both
                self.context.load_cert_chain(str(under_root(cert)), str(under_root(key)))
        self.headers = {"Content-Type": "application/json"}
        user, password = one(flags, "etcd-username"), one(flags, "etcd-password")
        if user and v2:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif user:
            self.headers["Authorization"] = self._call("/v3/auth/authenticate", {"name": user, "password": password})["token"]

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.endpoint + path, json.dumps(body).encode(), self.headers)
        with urllib.request.urlopen(req, timeout=5, context=self.context) as resp:
            return json.loads(resp.read())

    def _v2(self, method: str, key: str, query: str = "", form: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = dict(self.headers, **({"Content-Type": "application/x-www-form-urlencoded"} if data else {}))
        req = urllib.request.Request(f"{self.endpoint}/v2/keys{urllib.parse.quote(key)}{query}", data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5, context=self.context) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    @staticmethod
    def _b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def get(self, key: str) -> str | None:
        if self.v2:
            status, body = self._v2("GET", key)
            return None if status == 404 else body["node"]["value"]
        found = self._call("/v3/kv/range", {"key": self._b64(key)}).get("kvs")
        return base64.b64decode(found[0]["value"]).decode() if found else None

    def list(self, prefix: str) -> dict[str, str]:
        """The leases under PREFIX/subnets/, by their key's last part."""
        if self.v2:
            status, body = self._v2("GET", prefix.rstrip("/"), "?recursive=true")
            nodes = [] if status == 404 else body["node"].get("nodes", [])
            return {n["key"].rsplit("/", 1)[-1]: n.get("value", "") for n in nodes if not n.get("dir")}
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        kvs = self._call("/v3/kv/range", {"key": self._b64(prefix), "range_end": self._b64(end)}).get("kvs", [])
        return {base64.b64decode(kv["key"]).decode().rsplit("/", 1)[-1]: base64.b64decode(kv["value"]).decode() for kv in kvs}

    def create(self, key: str, value: str) -> bool:
        """Create the lease only if nobody holds it, with flannel's 24 h time to live."""
        if self.v2:
            status, _ = self._v2("PUT", key, "?prevExist=false", {"value": value, "ttl": str(24 * 3600)})
            return status in (200, 201)
        lease = self._call("/v3/lease/grant", {"TTL": 24 * 3600})["ID"]
        full = self._b64(key)
        txn = self._call("/v3/kv/txn", {
            "compare": [{"key": full, "target": "VERSION", "result": "EQUAL", "version": "0"}],
            "success": [{"request_put": {"key": full, "value": self._b64(value), "lease": lease}}],
        })
        return bool(txn.get("succeeded"))


def v4_part(lease_key: str) -> str:
    return lease_key.split("&", 1)[0]


def start(args: list[str], env: dict[str, str]) -> None:
    """What flanneld does at start, up to writing the subnet file; raises Exit as flanneld exits."""
    flags = settings(args, env)
    prefix = one(flags, "etcd-prefix", "/coreos.com/network")
    old = version() < (0, 18, 0)
    store = Etcd(flags, v2=old)
    found = store.get(prefix + "/config")
    if found is None:
        # new flanneld keeps retrying (and systemd's start times out); old flanneld exits
        raise Exit(NOT_IN_V2 if old else NOT_IN_V3)
    cfg = json.loads(found)
    network = ipaddress.IPv4Network(cfg["Network"])
    subnet_len = cfg.get("SubnetLen") or 24
    backend = cfg.get("Backend", {}).get("Type", "udp")
    iface = [ip for ip in flags.get("iface", []) if re.fullmatch(r"[\d.]+", ip)]
    public_ip = one(flags, "public-ip") or (iface[0] if iface else os.environ.get("FW_PUBLIC_IP", "127.0.0.1"))
    start_key = prefix + "/subnets/"
    taken = {k: json.loads(v).get("PublicIP") for k, v in store.list(start_key).items()}
    mine = next((v4_part(k) for k, ip in taken.items() if ip == public_ip), None)
    if mine is None:
        used = {v4_part(k) for k in taken}
        for candidate in list(network.subnets(new_prefix=subnet_len))[1:]:
            key = f"{candidate.network_address}-{subnet_len}"
            if key in used:
                continue
            value = json.dumps({"PublicIP": public_ip, "PublicIPv6": None, "BackendType": backend,
                                "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}})
            if store.create(start_key + key, value):
                mine = key
                break
        else:
            raise Exit("failed to acquire lease: out of subnets")
    subnet = ipaddress.IPv4Network(mine.replace("-", "/"))
    mtu = 1500 - {"vxlan": 50, "udp": 28, "ipip": 20, "wireguard": 80}.get(backend, 0)
    masq = "true" if one(flags, "ip-masq") == "true" else "false"
    out = under_root(one(flags, "subnet-file", "/run/flannel/subnet.env"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={subnet.network_address + 1}/{subnet_len}\n"
                   f"FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={masq}\n")


def main(argv: list[str]) -> int:
    if any(a.lstrip("-") == "version" for a in argv):
        print(os.environ.get("FW_FLANNELD_VERSION", DEFAULT_VERSION), file=sys.stderr)
        return 0
    try:
        start(argv, dict(os.environ))
    except Exit as exc:
        print(f"flanneld: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
