"""Hostile input for a gRPC server, each fault ending in counts: the fault suite and its benchmark.

``services/dbmanager/katib_dbmanager/faults_test.py`` runs these at a small size and asserts the
counts; ``benchmarks/hostile_bench.py`` runs them larger and prints them (docs/benchmarks.md).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from katib_testsupport import rawgrpc

OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, INTERNAL = 0, 3, 8, 13

#: The framings a broken client can send that grpcio's unary path never answered.
MALFORMED: dict[str, Sequence[bytes]] = {
    "no message": [],
    "short length prefix": [b"\x00\x00\x00"],
    "body shorter than its prefix": [rawgrpc.frame(b"abcd", length=100)],
    "undecodable body": [rawgrpc.frame(b"\xff\xff\xff\xff")],
}


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _tally(counts: Counter[str], answers: Sequence[rawgrpc.Answer], expected: int, name: str) -> None:
    for answer in answers:
        counts["sent"] += 1
        if not answer.answered:
            counts["unanswered"] += 1
        else:
            counts[name if answer.status == expected else f"other ({answer.status or answer.message})"] += 1


def malformed_flood(address: str, path: str, *, connections: int, rounds: int) -> Counter[str]:
    """``rounds`` of every MALFORMED framing on each connection, all open at once: answers."""
    counts: Counter[str] = Counter()
    for _ in range(connections):
        connection = rawgrpc.RawConnection(address)
        try:
            streams = [connection.open_call(path, data) for _ in range(rounds) for data in MALFORMED.values()]
            _tally(counts, list(connection.answers(streams, wait=120).values()), INVALID_ARGUMENT, "invalid argument")
        finally:
            connection.close()
    return counts


def core_rejections(address: str, path: str, *, calls: int) -> Counter[str]:
    """A compressed flag without grpc-encoding and a bad grpc-timeout: grpcio answers INTERNAL."""
    counts: Counter[str] = Counter()
    for _ in range(calls):
        compressed = rawgrpc.call(address, path, [rawgrpc.frame(b"abcd", compressed=True)])
        timeout = rawgrpc.call(address, path, [rawgrpc.frame(b"")], headers=[("grpc-timeout", "xyz")])
        _tally(counts, [compressed, timeout], INTERNAL, "internal")
    return counts


def oversized(address: str, path: str, *, requests: int, announced: int) -> Counter[str]:
    """``requests`` calls announcing ``announced`` bytes each, 4 KB of it sent, kept open: refusals."""
    counts: Counter[str] = Counter()
    head = rawgrpc.frame(b"\x0a" * 4000, length=announced)
    for start in range(0, requests, 8):  # 8 per connection fit its 64 KiB flow-control window
        connection = rawgrpc.RawConnection(address)
        try:
            streams = [connection.open_call(path, [head], end_stream=False) for _ in range(min(8, requests - start))]
            _tally(counts, list(connection.answers(streams, wait=60).values()), RESOURCE_EXHAUSTED, "refused")
        finally:
            connection.close()
    return counts


def idle_flood(address: str, *, connections: int, then: Callable[[], int]) -> Counter[str]:
    """Hold ``connections`` idle TCP connections while ``then()`` runs (it returns acknowledged calls)."""
    host, _, port = address.rpartition(":")
    idle: list[socket.socket] = []
    try:
        for _ in range(connections):
            idle.append(socket.create_connection((host.strip("[]"), int(port)), timeout=10))
        return Counter({"idle connections": len(idle), "acknowledged": then()})
    finally:
        for sock in idle:
            sock.close()
