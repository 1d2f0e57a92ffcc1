from pathlib import Path

import pytest

from katib_core.errors import ValidationError
from katib_webhook.settings import KATIB_TFEVENT_IMAGE, Settings


def test_defaults_are_katibs() -> None:
    settings = Settings.from_args([], {})
    assert (settings.port, settings.tls.cert_dir, settings.kubeconfig) == (8443, Path("/tmp/cert"), None)
    assert settings.tls.dns_names == (
        "katib-webhook",
        "katib-webhook.kubeflow",
        "katib-webhook.kubeflow.svc",
        "katib-webhook.kubeflow.svc.cluster.local",
    )
    injection = settings.admission.injection
    assert injection.db_manager_address == "katib-db-manager.kubeflow:6789"
    assert sorted(injection.collectors) == ["File", "StdOut", "TensorFlowEvent"]
    stdout = injection.collectors["StdOut"]
    assert stdout.resources == {
        "requests": {"cpu": "50m", "memory": "10Mi", "ephemeral-storage": "500Mi"},
        "limits": {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"},
    }
    assert injection.collectors["TensorFlowEvent"].image == KATIB_TFEVENT_IMAGE
    assert injection.collectors["TensorFlowEvent"].resources["limits"]["memory"] == "1Gi"
    assert settings.admission.validation.collector_kinds == {"StdOut", "File", "TensorFlowEvent"}
    assert "tpe" in settings.admission.validation.algorithms
    assert settings.admission.excluded_users == {"system:serviceaccount:kubeflow:katib-controller"}


@pytest.mark.parametrize(
    ("environ", "address"),
    [
        ({"KATIB_DB_MANAGER_ADDRESS": "db:1"}, "db:1"),
        ({"KATIB_DB_MANAGER_SERVICE_NAMESPACE": "katib"}, "katib-db-manager.katib:6789"),
        ({"KATIB_DB_MANAGER_SERVICE_IP": "10.0.0.5", "KATIB_DB_MANAGER_SERVICE_PORT": "7000"}, "10.0.0.5:7000"),
    ],
)
def test_the_db_manager_address_from_env(environ: dict[str, str], address: str) -> None:
    assert Settings.from_args([], environ).admission.injection.db_manager_address == address
    assert (
        Settings.from_args(["--db-manager-address", "flag:1"], environ).admission.injection.db_manager_address
        == "flag:1"
    )


def test_collector_flags_and_config(tmp_path: Path) -> None:
    config = tmp_path / "katib-config.yaml"
    config.write_text(
        "runtime:\n  metricsCollectors:\n"
        "    - kind: PrometheusMetric\n      image: prom/collector:1\n      waitAllProcesses: false\n"
        "      resources:\n        limits:\n          memory: 200Mi\n"
    )
    settings = Settings.from_args(
        [
            "--collector-config", str(config),
            "--collector-image", "StdOut=me/collector:2",
            "--collector-image", "TensorFlowEvent=",
            "--collector-command", "python -m katib_metrics_collector",
            "--collector-cpu-limit", "1",
        ],
        {},
    )  # fmt: skip
    collectors = settings.admission.injection.collectors
    assert sorted(collectors) == ["File", "PrometheusMetric", "StdOut"]
    assert collectors["StdOut"].image == "me/collector:2"
    assert collectors["StdOut"].command == ("python", "-m", "katib_metrics_collector")
    assert collectors["StdOut"].resources["limits"]["cpu"] == "1"
    prometheus = collectors["PrometheusMetric"]
    assert (prometheus.wait_all_processes, prometheus.resources["limits"]["memory"]) == (False, "200Mi")
    assert settings.admission.validation.collector_kinds == {"StdOut", "File", "PrometheusMetric"}


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--port", "70000"], "--port"),
        (["--collector-image", "StdOut"], "--collector-image"),
        (["--collector-config", "/does/not/exist"], "--collector-config"),
        (["--cert-reload-interval", "soon"], "--cert-reload-interval"),
        (["--algorithms", ","], "--algorithms"),
    ],
)
def test_bad_flags_name_themselves(argv: list[str], flag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args(argv, {})
    assert caught.value.field == flag
