"""Probes the mesh step sends: ICMP echo (with or without DF) and one UDP datagram per port, all at once
from one thread, each answered, refused or left silent by a shared deadline.

ICMP goes through a raw socket (root, as the wizard runs) rather than the `ping` binary: one process and
one socket for every node of a cluster, where `ping` would cost a process per probe and is not installed
everywhere. UDP probes use a connected socket each, so the kernel hands an ICMP port unreachable back to
the socket that caused it (ECONNREFUSED).
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import select
import socket
import struct
import time

from wizard.node.meshinfo import Probe, ProbeResult

ICMP_ECHO, ICMP_ECHO_REPLY, ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED = 8, 0, 3, 11
FRAG_NEEDED = 4
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 0, 2
MAGIC = b"flannel-wizard mesh probe "
UDP_PAYLOAD = b"flannel-wizard probe: this datagram is ignored by design\n"
UDP_GRACE = 0.2  # seconds a UDP probe waits for port unreachable once every ICMP probe has its answer


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, size: int) -> bytes:
    """An ICMP echo request with `size` bytes of payload (ping's -s), starting with our marker."""
    payload = (MAGIC * (size // len(MAGIC) + 1))[:size]
    header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, _checksum(header + payload), ident, seq) + payload


def parse_icmp(packet: bytes) -> tuple[int, int, int, int, int] | None:
    """(type, code, id, seq, next-hop MTU) of an IPv4 packet carrying ICMP: for an echo reply its own id
    and seq; for an error the id and seq of the echo request it quotes."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:]
    if len(icmp) < 8:
        return None
    kind, code = icmp[0], icmp[1]
    if kind == ICMP_ECHO_REPLY:
        ident, seq = struct.unpack("!HH", icmp[4:8])
        return kind, code, ident, seq, 0
    if kind in (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED):
        mtu = struct.unpack("!H", icmp[6:8])[0]
        inner = icmp[8:]
        if len(inner) < 20:
            return None
        inner_ihl = (inner[0] & 0x0F) * 4
        if inner[9] != socket.IPPROTO_ICMP or len(inner) < inner_ihl + 8:
            return None
        quoted = inner[inner_ihl:]
        if quoted[0] != ICMP_ECHO:
            return None
        ident, seq = struct.unpack("!HH", quoted[4:8])
        return kind, code, ident, seq, mtu
    return None


def send(probes: list[Probe], timeout: float) -> list[ProbeResult]:
    """Send every probe now and collect what comes back until each has an outcome or `timeout` passes."""
    results: dict[int, ProbeResult] = {}
    started: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    icmp = [i for i, p in enumerate(probes) if p.kind == "icmp"]
    udp = [i for i, p in enumerate(probes) if p.kind == "udp"]
    ident = _next_ident()
    sockets: list[socket.socket] = []
    rx: socket.socket | None = None
    by_fd: dict[int, int] = {}  # UDP socket fd -> probe index
    try:
        if icmp:
            try:
                rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                df = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            except PermissionError:
                for i in icmp:
                    results[i] = ProbeResult(probes[i], "error", "sending ICMP needs root (a raw socket)")
            else:
                sockets += [rx, df]
                rx.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
                df.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
                for i in icmp:
                    p = probes[i]
                    try:
                        (df if p.df else rx).sendto(echo_request(ident, i, p.size), (p.address, 0))
                        started[i] = time.monotonic()
                    except OSError as exc:
                        results[i] = _send_error(p, exc)
        for i in udp:
            p = probes[i]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(s)
            s.setblocking(False)
            try:
                s.connect((p.address, p.port))
                s.send(UDP_PAYLOAD)
                started[i] = time.monotonic()
                by_fd[s.fileno()] = i
            except OSError as exc:
                results[i] = _send_error(p, exc)
        watched = [s for s in sockets if s is rx or s.fileno() in by_fd]
        sent_at = time.monotonic()
        while len(results) < len(probes):
            if all(i in results for i in icmp):
                # a port that is closed says so within a round trip; a port that is open (vxlan's socket
                # takes the datagram and says nothing) would hold every check for the whole deadline
                rtts = [r.rtt_ms or 0.0 for r in results.values() if r.outcome == "answered"]
                deadline = min(deadline, sent_at + max(UDP_GRACE, 4 * max(rtts, default=0.0) / 1000))
            left = deadline - time.monotonic()
            if left <= 0 or not watched:
                break
            ready, _, _ = select.select(watched, [], [], left)
            for s in ready:
                if s is rx:
                    _read_icmp(rx, probes, ident, started, results)
                    continue
                i = by_fd[s.fileno()]
                watched.remove(s)
                try:
                    s.recv(2048)
                    results[i] = ProbeResult(probes[i], "answered", rtt_ms=_ms(started[i]))
                except OSError as exc:
                    results[i] = _send_error(probes[i], exc)
    finally:
        for s in sockets:
            s.close()
    return [results.get(i) or ProbeResult(p, "silent") for i, p in enumerate(probes)]


_idents = itertools.count(random.randrange(0x10000))


def _next_ident() -> int:
    """An echo id of its own for each round: a late reply to an earlier round is not taken for this one's."""
    return (os.getpid() + next(_idents)) & 0xFFFF


def _read_icmp(rx: socket.socket, probes: list[Probe], ident: int, started: dict[int, float],
               results: dict[int, ProbeResult]) -> None:
    try:
        packet, addr = rx.recvfrom(65535)
    except OSError:
        return
    found = parse_icmp(packet)
    if found is None:
        return
    kind, code, got_id, seq, mtu = found
    if got_id != ident or seq >= len(probes) or seq in results or probes[seq].kind != "icmp":
        return
    p = probes[seq]
    if kind == ICMP_ECHO_REPLY:
        if addr[0] != p.address:
            return  # someone else's reply that happens to carry our id
        results[seq] = ProbeResult(p, "answered", rtt_ms=_ms(started.get(seq)))
    elif kind == ICMP_UNREACHABLE and code == FRAG_NEEDED:
        results[seq] = ProbeResult(p, "too-big", f"a router on the way says its MTU is {mtu}" if mtu else "")
    else:
        what = "time exceeded (a routing loop?)" if kind == ICMP_TIME_EXCEEDED else f"unreachable (ICMP code {code})"
        results[seq] = ProbeResult(p, "unreachable", what)


def _send_error(p: Probe, exc: OSError) -> ProbeResult:
    if exc.errno == errno.EMSGSIZE:
        return ProbeResult(p, "too-big", "larger than the MTU of this node's route to it")
    if exc.errno == errno.ECONNREFUSED:
        return ProbeResult(p, "refused", "ICMP port unreachable came back")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return ProbeResult(p, "unreachable", os.strerror(exc.errno))
    return ProbeResult(p, "error", exc.strerror or str(exc))


def _ms(t0: float | None) -> float | None:
    return None if t0 is None else round((time.monotonic() - t0) * 1000, 2)
