"""Stand-in for `systemctl`, because systemd is not PID 1 on the test machines and flanneld is not
installed: `restart flanneld` does what flanneld does at start against the *real* etcd (through its v3 JSON gateway) — reads
PREFIX/config, takes a free subnet as a lease under PREFIX/subnets/ in a transaction with a 24 h etcd
lease (keeping the lease it already holds), and writes subnet.env. Other services only log the call.

Configured through the environment the wizard passes on:
  FW_TEST_ROOT       the --root the wizard writes under (default /)
  FW_STANDIN_LOG     file that gets one line per call
  FW_SYSTEMCTL_MODE  "nosystemd" answers like systemctl on a machine without systemd
  FW_SYSTEMCTL_FAIL  a service whose restart fails the way systemctl reports it
  FW_PUBLIC_IP       this node's PublicIP in the lease (default 127.0.0.1)
  FW_FLANNELD_HANG   "1": flanneld starts but never writes its subnet file (a stuck flanneld)
  FW_SYSTEMCTL_BLOCK a service whose restart never returns (it touches FW_STANDIN_LOG.blocked first), for
                     killing the wizard while a restart is in flight
  FW_STANDIN_ENV     "1": log the names of the environment variables systemctl was given
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("FW_TEST_ROOT", "/"))


def under_root(path: str) -> Path:
    return ROOT / path.lstrip("/")


def log(*words: str) -> None:
    target = os.environ.get("FW_STANDIN_LOG")
    if target:
        with open(target, "a") as f:
            f.write("systemctl " + " ".join(words) + "\n")


def parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return out


def unit_environment(service: str) -> dict[str, str]:
    """EnvironmentFile= of the packaged unit and of every drop-in, as systemd would load them."""
    files = ["/etc/sysconfig/flanneld"]
    dropins = under_root(f"/etc/systemd/system/{service}.service.d")
    if dropins.is_dir():
        for conf in sorted(dropins.glob("*.conf")):
            for line in conf.read_text().splitlines():
                if line.startswith("EnvironmentFile="):
                    files.append(line.split("=", 1)[1].lstrip("-"))
    env: dict[str, str] = {}
    for path in files:
        real = under_root(path)
        if real.exists():
            env.update(parse_env(real.read_text()))
    return env


def gateway(endpoint: str, flags: dict[str, str], env: dict[str, str]):
    """A caller for etcd's v3 JSON gateway (what etcdctl speaks, over HTTP): stdlib only, so the
    stand-in starts fast and does not share the wizard's etcd client."""
    import base64
    import ssl
    import urllib.request

    context = None
    if endpoint.startswith("https://"):
        context = ssl.create_default_context(cafile=str(under_root(flags["etcd-cafile"])))
        context.load_cert_chain(str(under_root(flags["etcd-certfile"])), str(under_root(flags["etcd-keyfile"])))
    headers = {"Content-Type": "application/json"}

    def call(path: str, body: dict) -> dict:
        req = urllib.request.Request(endpoint + path, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return json.loads(resp.read())

    if "etcd-username" in flags:
        token = call("/v3/auth/authenticate", {"name": flags["etcd-username"], "password": env.get("FLANNELD_ETCD_PASSWORD", "")})
        headers["Authorization"] = token["token"]
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    unb64 = lambda text: base64.b64decode(text).decode()  # noqa: E731
    return call, b64, unb64


def flanneld_start() -> int:
    env = unit_environment("flanneld")
    endpoints = env.get("FLANNEL_ETCD_ENDPOINTS", "http://127.0.0.1:2379").split(",")
    prefix = env.get("FLANNEL_ETCD_PREFIX", "/coreos.com/network")
    opts = shlex.split(env.get("FLANNEL_OPTIONS", ""))
    flags = dict(o.lstrip("-").split("=", 1) if "=" in o else (o.lstrip("-"), "true") for o in opts)
    subnet_file = flags.get("subnet-file", "/run/flannel/subnet.env")
    call, b64, unb64 = gateway(endpoints[0], flags, env)
    found = call("/v3/kv/range", {"key": b64(prefix + "/config")}).get("kvs")
    if not found:
        print("Couldn't fetch network config: 100: Key not found", file=sys.stderr)
        print("Job for flanneld.service failed because the control process exited with error code.", file=sys.stderr)
        return 1
    cfg = json.loads(unb64(found[0]["value"]))
    network = ipaddress.IPv4Network(cfg["Network"])
    subnet_len = cfg.get("SubnetLen") or 24
    backend = cfg.get("Backend", {}).get("Type", "udp")
    public_ip = os.environ.get("FW_PUBLIC_IP", "127.0.0.1")
    start = prefix + "/subnets/"
    leases = call("/v3/kv/range", {"key": b64(start), "range_end": b64(start[:-1] + chr(ord(start[-1]) + 1))})
    taken = {unb64(kv["key"]).rsplit("/", 1)[-1]: json.loads(unb64(kv["value"])).get("PublicIP")
             for kv in leases.get("kvs", [])}
    mine = next((k for k, ip in taken.items() if ip == public_ip), None)
    if mine is None:
        lease = call("/v3/lease/grant", {"TTL": 24 * 3600})["ID"]
        for candidate in list(network.subnets(new_prefix=subnet_len))[1:]:
            key = f"{candidate.network_address}-{subnet_len}"
            if key in taken:
                continue
            value = json.dumps({"PublicIP": public_ip, "PublicIPv6": None, "BackendType": backend,
                                "BackendData": {"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}})
            full = b64(f"{prefix}/subnets/{key}")
            txn = call("/v3/kv/txn", {
                "compare": [{"key": full, "target": "VERSION", "result": "EQUAL", "version": "0"}],
                "success": [{"request_put": {"key": full, "value": b64(value), "lease": lease}}],
            })
            if txn.get("succeeded"):
                mine = key
                break
        else:
            print("failed to acquire lease: out of subnets", file=sys.stderr)
            return 1
    subnet = ipaddress.IPv4Network(mine.replace("-", "/"))
    mtu = 1500 - {"vxlan": 50, "udp": 28, "ipip": 20, "wireguard": 80}.get(backend, 0)
    masq = "true" if flags.get("ip-masq") == "true" else "false"
    out = under_root(subnet_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={subnet.network_address + 1}/{subnet_len}\n"
                   f"FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={masq}\n")
    return 0


def main(argv: list[str]) -> int:
    log(*argv)
    if os.environ.get("FW_STANDIN_ENV") == "1":
        log("env", *sorted(os.environ))
    if os.environ.get("FW_SYSTEMCTL_MODE") == "nosystemd":
        print("System has not been booted with systemd as init system (PID 1). Can't operate.", file=sys.stderr)
        print("Failed to connect to bus: Host is down", file=sys.stderr)
        return 1
    if not argv:
        return 0
    verb, service = argv[0], (argv[1] if len(argv) > 1 else "").removesuffix(".service")
    if verb in ("restart", "start") and service == os.environ.get("FW_SYSTEMCTL_FAIL"):
        print(f'Job for {service}.service failed because the control process exited with error code.\n'
              f'See "systemctl status {service}.service" and "journalctl -xeu {service}.service" for details.',
              file=sys.stderr)
        return 1
    if verb in ("restart", "start") and service == os.environ.get("FW_SYSTEMCTL_BLOCK"):
        Path(os.environ["FW_STANDIN_LOG"] + ".blocked").touch()
        while True:
            time.sleep(60)  # until the test kills the run
    if verb in ("restart", "start") and service == "flanneld" and os.environ.get("FW_FLANNELD_HANG") == "1":
        return 0
    if verb in ("restart", "start") and service == "flanneld":
        try:
            return flanneld_start()
        except Exception as exc:  # flanneld exits; systemctl reports the failed job, not a traceback
            print(f"flanneld: {exc}", file=sys.stderr)
            print("Job for flanneld.service failed because the control process exited with error code.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
