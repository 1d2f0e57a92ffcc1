"""LeaderElector on the real API server: one leader among replicas, hand-over on release and on
expiry, and a leader that stops renewing gives up before anyone else can take over."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from katib_operator import kubeapi
from katib_operator.kubeapi import KubeApi
from katib_operator.leases import LeaderElector
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster

FAST = {"lease_seconds": 4.0, "renew_seconds": 0.5, "renew_deadline": 2.0, "retry_seconds": 0.2}


@pytest.fixture()
def api(k8s_cluster: Cluster) -> KubeApi:
    return KubeApi(kubeapi.load(str(k8s_cluster.kubeconfig)))


@pytest.fixture()
def electors(api: KubeApi, k8s_namespace: str) -> Iterator[list[LeaderElector]]:
    made: list[LeaderElector] = []
    yield made
    for elector in made:
        elector.release()


def elector(api: KubeApi, namespace: str, identity: str, made: list[LeaderElector], **kwargs: object) -> LeaderElector:
    created = LeaderElector(api, name="lease", namespace=namespace, identity=identity, **{**FAST, **kwargs})  # type: ignore[arg-type]
    made.append(created)
    return created


def holder(api: KubeApi, namespace: str) -> str | None:
    lease = api.request("GET", kubeapi.path("coordination.k8s.io", "v1", "leases", namespace, "lease"))
    return (lease.get("spec") or {}).get("holderIdentity")


def test_only_one_of_racing_replicas_leads(api: KubeApi, k8s_namespace: str, electors: list[LeaderElector]) -> None:
    replicas = [elector(api, k8s_namespace, f"r{i}", electors) for i in range(4)]
    start = threading.Barrier(len(replicas))
    won: dict[str, bool] = {}

    def attempt(candidate: LeaderElector) -> None:
        start.wait()
        won[candidate.identity] = candidate.try_acquire()

    threads = [threading.Thread(target=attempt, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [who for who, ok in won.items() if ok]
    assert len(winners) == 1  # the create (or resourceVersion-guarded update) lets exactly one through
    assert holder(api, k8s_namespace) == winners[0]
    losers = [r for r in replicas if r.identity != winners[0]]
    assert not any(r.try_acquire() for r in losers)  # a live lease is not taken


def test_release_hands_over_at_once(api: KubeApi, k8s_namespace: str, electors: list[LeaderElector]) -> None:
    a = elector(api, k8s_namespace, "a", electors)
    b = elector(api, k8s_namespace, "b", electors)
    assert a.acquire()
    stop = threading.Event()
    result: list[bool] = []
    waiting = threading.Thread(target=lambda: result.append(b.acquire(stop)))
    waiting.start()
    time.sleep(1.0)
    assert not result  # a keeps renewing: b waits
    assert holder(api, k8s_namespace) == "a"
    a.release()
    waiting.join(10)
    assert result == [True]
    assert b.leading
    assert holder(api, k8s_namespace) == "b"


def test_a_dead_leaders_lease_expires(api: KubeApi, k8s_namespace: str, electors: list[LeaderElector]) -> None:
    a = elector(api, k8s_namespace, "a", electors)
    b = elector(api, k8s_namespace, "b", electors)
    assert a.acquire()
    a._stop.set()  # a crash: renewals stop, nothing is released
    a.leading = False
    began = time.monotonic()
    assert b.acquire(threading.Event())
    assert time.monotonic() - began >= FAST["lease_seconds"] - 1.0  # not before the lease ran out
    assert holder(api, k8s_namespace) == "b"


def test_a_leader_that_cannot_renew_gives_up_before_the_lease_ends(
    api: KubeApi, k8s_namespace: str, electors: list[LeaderElector]
) -> None:
    lost = threading.Event()
    a = elector(api, k8s_namespace, "a", electors, on_lost=lost.set)
    assert a.acquire()
    path = kubeapi.path("coordination.k8s.io", "v1", "leases", k8s_namespace, "lease")
    lease = api.request("GET", path)
    lease["spec"]["holderIdentity"] = "usurper"  # e.g. a's renewals were partitioned away
    lease["spec"]["renewTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    api.request("PUT", path, body=lease)
    began = time.monotonic()
    polling.wait_until(lost.is_set, timeout=10, what="a to give up leadership", interval=0.1)
    assert time.monotonic() - began < FAST["lease_seconds"]
    assert not a.leading


def test_renew_deadline_must_be_shorter_than_the_lease(api: KubeApi) -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(api, name="x", namespace="y", identity="z", lease_seconds=5, renew_deadline=5)
