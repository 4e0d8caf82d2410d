"""A cluster's worth of flannel leases in a real etcd, in flanneld's own format, for tests and bench/leases.py.

Keys `PREFIX/subnets/10.x.y.0-24` on a 10.0.0.0/9 network (10.0.0.0/24 itself is never leased: SubnetMin),
each value what flanneld's json.Marshal writes, each key attached to a 24 h etcd lease as flanneld's
transaction attaches it (one etcd lease for all: what is measured is the read).
"""

from __future__ import annotations

import json

NETWORK = "10.0.0.0/9"  # 32 767 node subnets of /24: room for a big cluster, clear of the default service CIDR


def lease(prefix: str, i: int) -> tuple[str, str]:
    """The i-th node's lease as flanneld writes it, with a PublicIP of its own."""
    n = i + 1
    key = f"{prefix}/subnets/10.{n // 256}.{n % 256}.0-24"
    mac = f"c6:d2:{n >> 24 & 255:02x}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
    value = json.dumps({"PublicIP": public_ip(i), "PublicIPv6": None, "BackendType": "vxlan",
                        "BackendData": {"VNI": 1, "VtepMAC": mac}}, separators=(",", ":"))
    return key, value


def public_ip(i: int) -> str:
    n = i + 1
    return f"192.168.{n // 250}.{n % 250 + 1}"


def answers(endpoint: str, prefix: str) -> str:
    return (f"version: 1\netcd:\n  endpoints: [\"{endpoint}\"]\n  prefix: {prefix}\n  api: v3\n"
            f"network:\n  cidr: {NETWORK}\n")


def fill(endpoint: str, prefix: str, count: int) -> list[tuple[str, str]]:
    """PREFIX/config and `count` leases, in transactions of 100 (etcd allows 128 operations in one); the
    leases, in key order as etcd lists them."""
    from wizard.node.etcd import load_v3

    load_v3()  # etcd3 on the protobuf runtime, with the gRPC settings, the wizard uses
    import etcd3

    host, port = endpoint.rsplit("//", 1)[1].split(":")
    client = etcd3.client(host, int(port), timeout=30)
    made = [lease(prefix, i) for i in range(count)]
    try:
        ttl = client.lease(24 * 3600)
        client.put(f"{prefix}/config", json.dumps({"Network": NETWORK, "SubnetLen": 24, "Backend": {"Type": "vxlan"}}))
        for start in range(0, count, 100):
            puts = [client.transactions.put(k, v, lease=ttl) for k, v in made[start:start + 100]]
            client.transaction(compare=[], success=puts, failure=[])
    finally:
        client.close()
    return sorted(made)
