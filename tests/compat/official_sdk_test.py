"""The official ``kubeflow-katib`` 0.19.0 SDK against our DB manager, unchanged.

Runs in the ``katib-compat`` resolve (protobuf 4.x, as in trial images) against the packaged
``katib-db-manager`` process, on SQLite and on the real MariaDB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from katib_testsupport.processes import DBManagerProcess, mariadb_database
from kubeflow import katib
from kubeflow.katib import katib_api_pb2, katib_api_pb2_grpc
from kubeflow.katib.utils import utils as katib_utils
from kubernetes import client as k8s_client

VECTORS = {
    "ReportObservationLogRequest": "0a1874756e652d6578706572696d656e742d78376b327039717a12280a260a14323032342d30"
    "372d32395431353a30393a30385a120e0a06726573756c741204302e3939",
    "GetObservationLogRequest": "0a1874756e652d6578706572696d656e742d78376b327039717a1206726573756c74",
    "GetObservationLogReply": "0a00",
}


@pytest.fixture(params=["sqlite", "mysql"], scope="module")
def db_manager(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        with DBManagerProcess("--db-url", f"sqlite:///{tmp_path_factory.mktemp('db')}/katib.db") as proc:
            yield proc.address
        return
    name = f"pykatib_compat_{uuid.uuid4().hex[:10]}"
    mariadb_database(name)
    try:
        env = {"DB_NAME": "mysql", "KATIB_MYSQL_DB_HOST": "127.0.0.1", "KATIB_MYSQL_DB_DATABASE": name}
        with DBManagerProcess(env=env) as proc:
            yield proc.address
    finally:
        mariadb_database(name, drop=True)


@pytest.fixture()
def in_trial(monkeypatch: pytest.MonkeyPatch) -> str:
    """What the pod webhook gives a trial: KATIB_TRIAL_NAME. Tests don't run in a pod, so the
    SDK's unconditional read of the service-account namespace file is patched."""
    trial = f"tune-experiment-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KATIB_TRIAL_NAME", trial)
    monkeypatch.setattr(katib_utils, "get_current_k8s_namespace", lambda: "kubeflow")
    return trial


def official_logs(address: str, trial: str, metric: str = "") -> list[tuple[str, str, str]]:
    with grpc.insecure_channel(address) as channel:
        reply = katib_api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
            katib_api_pb2.GetObservationLogRequest(trial_name=trial, metric_name=metric), timeout=30
        )
    return [(m.time_stamp, m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs]


def _shape(file: descriptor_pb2.FileDescriptorProto) -> dict[str, object]:
    """Everything about a proto file that reaches the wire or the RPC paths."""

    def message(m: descriptor_pb2.DescriptorProto, prefix: str) -> dict[str, object]:
        return {
            "fields": sorted((f.name, f.number, f.type, f.label, f.type_name) for f in m.field),
            "nested": {n.name: message(n, f"{prefix}.{n.name}") for n in m.nested_type},
            "enums": {e.name: sorted((v.name, v.number) for v in e.value) for e in m.enum_type},
        }

    return {
        "package": file.package,
        "messages": {m.name: message(m, m.name) for m in file.message_type},
        "enums": {e.name: sorted((v.name, v.number) for v in e.value) for e in file.enum_type},
        "services": {
            s.name: sorted(
                (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming) for m in s.method
            )
            for s in file.service
        },
    }


# Both modules define package api.v1.beta1, and protobuf refuses two definitions of one symbol in
# a process; our generated module is therefore exercised in a child interpreter.
_OURS = """
import json, sys
from google.protobuf import descriptor_pb2
from katib_api.v1beta1 import api_pb2
request = json.load(sys.stdin)
file = descriptor_pb2.FileDescriptorProto()
api_pb2.DESCRIPTOR.CopyToProto(file)
out = {"descriptor": file.SerializeToString().hex(), "reserialized": {}}
for name, raw in request.items():
    out["reserialized"][name] = getattr(api_pb2, name).FromString(bytes.fromhex(raw)).SerializeToString().hex()
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def ours() -> dict[str, object]:
    official = {name: getattr(katib_api_pb2, name).FromString(bytes.fromhex(raw)) for name, raw in VECTORS.items()}
    request = {f"{name}": msg.SerializeToString().hex() for name, msg in official.items()}
    result = subprocess.run(
        [sys.executable, "-c", _OURS],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_our_proto_matches_the_official_descriptor_exactly(ours: dict[str, str]) -> None:
    mine = descriptor_pb2.FileDescriptorProto.FromString(bytes.fromhex(ours["descriptor"]))
    theirs = descriptor_pb2.FileDescriptorProto()
    katib_api_pb2.DESCRIPTOR.CopyToProto(theirs)
    assert _shape(mine) == _shape(theirs)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_wire_vectors_parse_identically_both_ways(ours: dict[str, dict[str, str]], name: str) -> None:
    raw = bytes.fromhex(VECTORS[name])
    assert getattr(katib_api_pb2, name).FromString(raw).SerializeToString() == raw
    assert ours["reserialized"][name] == VECTORS[name]


def test_official_report_metrics_is_stored(db_manager: str, in_trial: str) -> None:
    katib.report_metrics({"loss": 0.01, "accuracy": 0.99, "epoch": 1, "lr": "0.5"}, db_manager_address=db_manager)
    logs = official_logs(db_manager, in_trial)
    assert [(n, v) for _, n, v in logs] == [("loss", "0.01"), ("accuracy", "0.99"), ("epoch", "1"), ("lr", "0.5")]
    stamps = {t for t, _, _ in logs}
    assert len(stamps) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamps.pop())


def test_official_report_metrics_of_nothing_succeeds(db_manager: str, in_trial: str) -> None:
    # Katib's own server fails this request with UNKNOWN (invalid SQL); ours treats it as a no-op.
    katib.report_metrics({}, db_manager_address=db_manager)
    assert official_logs(db_manager, in_trial) == []


def test_official_report_metrics_keeps_its_error_contract(
    db_manager: str, in_trial: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="Invalid value abc"):
        katib.report_metrics({"loss": "abc"}, db_manager_address=db_manager)
    with pytest.raises(RuntimeError, match="Unable to push metrics to Katib DB for Trial kubeflow/"):
        katib.report_metrics({"loss": 1}, db_manager_address="127.0.0.1:1", timeout=2)
    monkeypatch.delenv("KATIB_TRIAL_NAME")
    with pytest.raises(ValueError, match="The Trial name is not passed"):
        katib.report_metrics({"loss": 1}, db_manager_address=db_manager)


def test_official_report_metrics_many_calls_keep_order(db_manager: str, in_trial: str) -> None:
    # The SDK stamps whole seconds, so these calls tie; our (time, id) order keeps call order.
    for step in range(30):
        katib.report_metrics({"loss": 1.0 / (step + 1)}, db_manager_address=db_manager)
    assert [v for _, _, v in official_logs(db_manager, in_trial, "loss")] == [str(1.0 / (s + 1)) for s in range(30)]


def test_official_stub_round_trip_and_delete(db_manager: str) -> None:
    trial = f"stub-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(db_manager) as channel:
        stub = katib_api_pb2_grpc.DBManagerStub(channel)
        stub.ReportObservationLog(
            katib_api_pb2.ReportObservationLogRequest(
                trial_name=trial,
                observation_log=katib_api_pb2.ObservationLog(
                    metric_logs=[
                        katib_api_pb2.MetricLog(
                            time_stamp="2019-02-03T04:05:06+09:00",
                            metric=katib_api_pb2.Metric(name="loss", value="0.3"),
                        ),
                        katib_api_pb2.MetricLog(
                            time_stamp="0001-01-01T00:00:00Z",
                            metric=katib_api_pb2.Metric(name="loss", value="unavailable"),
                        ),
                    ]
                ),
            ),
            timeout=30,
        )
        assert official_logs(db_manager, trial) == [
            ("0001-01-01T00:00:00Z", "loss", "unavailable"),
            ("2019-02-02T19:05:06Z", "loss", "0.3"),
        ]
        stub.DeleteObservationLog(katib_api_pb2.DeleteObservationLogRequest(trial_name=trial), timeout=30)
        stub.DeleteObservationLog(katib_api_pb2.DeleteObservationLogRequest(trial_name=trial), timeout=30)
    assert official_logs(db_manager, trial) == []


def test_official_client_get_trial_metrics(db_manager: str, in_trial: str, tmp_path: Path) -> None:
    katib.report_metrics({"loss": 0.25}, db_manager_address=db_manager)
    configuration = k8s_client.Configuration()
    configuration.host = "https://127.0.0.1:1"  # never contacted: get_trial_metrics only speaks gRPC
    client = katib.KatibClient(client_configuration=configuration, namespace="kubeflow")
    logs = client.get_trial_metrics(in_trial, db_manager_address=db_manager)
    assert [(log.metric.name, log.metric.value) for log in logs] == [("loss", "0.25")]
