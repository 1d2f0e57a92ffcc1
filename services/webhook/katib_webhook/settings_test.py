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


def test_katib_config_admits_its_algorithms_and_brings_its_collectors(tmp_path: Path) -> None:
    config = tmp_path / "katib-config.yaml"
    config.write_text(
        "apiVersion: config.kubeflow.org/v1beta1\nkind: KatibConfig\nruntime:\n"
        "  metricsCollectors:\n    - kind: StdOut\n      image: katib/file-collector\n"
        "  suggestions:\n    - algorithmName: enas\n      image: katib/suggestion-enas\n"
        "    - algorithmName: my-bohb\n      endpoint: bohb.tuning:6789\n"
        "  earlyStoppings:\n    - algorithmName: my-asha\n      image: me/asha\n"
    )
    settings = Settings.from_args(["--katib-config", str(config)], {})
    allowed = settings.admission.validation
    assert {"enas", "my-bohb", "tpe", "random"} <= allowed.algorithms
    assert {"medianstop", "my-asha"} <= allowed.early_stopping_algorithms
    assert settings.admission.injection.collectors["StdOut"].image == "katib/file-collector"
    assert "File" in settings.admission.injection.collectors  # the defaults stay for kinds it does not name
    config.write_text("runtime:\n  suggestions:\n    - algorithmName: enas\n")
    with pytest.raises(ValidationError) as caught:
        Settings.from_args(["--katib-config", str(config)], {})
    assert caught.value.field == f"{config}: runtime.suggestions[0].image"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--port", "70000"], "--port"),
        (["--katib-config", "/does/not/exist"], "--katib-config"),
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


def test_env_defaults_and_flags_over_them() -> None:
    env = {
        "KATIB_WEBHOOK_PORT": "9443",
        "KATIB_WEBHOOK_CERT_DIR": "/certs",
        "KATIB_CORE_NAMESPACE": "katib",
        "KATIB_EARLY_STOPPING_ADDRESS": "es:6788",
        "KATIB_INJECT_PUSH_TOKEN": "true",
        "LOG_LEVEL": "DEBUG",
        "KUBECONFIG": "/kube/config",
    }
    settings = Settings.from_args([], env)
    assert (settings.port, settings.tls.cert_dir, settings.log_level, settings.kubeconfig) == (
        9443,
        Path("/certs"),
        "DEBUG",
        "/kube/config",
    )
    assert settings.tls.dns_names[1] == "katib-webhook.katib"
    assert settings.admission.injection.early_stopping_address == "es:6788"
    assert settings.admission.injection.push_token
    flagged = Settings.from_args(
        ["--port", "1", "--cert-dir", "/c", "--service-namespace", "ns", "--log-level", "WARNING"], env
    )
    assert (flagged.port, flagged.tls.cert_dir, flagged.tls.dns_names[1], flagged.log_level) == (
        1,
        Path("/c"),
        "katib-webhook.ns",
        "WARNING",
    )


def test_a_service_link_port_variable_is_not_ours() -> None:
    """A Service named katib-webhook gives its namespace's Pods KATIB_WEBHOOK_PORT=tcp://IP:443."""
    assert Settings.from_args([], {"KATIB_WEBHOOK_PORT": "tcp://10.96.0.7:443"}).port == 8443
    assert Settings.from_args(["--port=8443"], {"KATIB_WEBHOOK_PORT": "tcp://10.96.0.7:443"}).port == 8443


@pytest.mark.parametrize(("value", "inject"), [("1", True), ("yes", True), ("false", False), ("", False)])
def test_inject_push_token_variable(value: str, inject: bool) -> None:
    assert Settings.from_args([], {"KATIB_INJECT_PUSH_TOKEN": value}).admission.injection.push_token is inject


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"KATIB_WEBHOOK_PORT": "https"}, "KATIB_WEBHOOK_PORT"),
        ({"KATIB_WEBHOOK_PORT": "70000"}, "KATIB_WEBHOOK_PORT"),
        ({"KATIB_DB_MANAGER_SERVICE_PORT": "x"}, "KATIB_DB_MANAGER_SERVICE_PORT"),
        ({"KATIB_INJECT_PUSH_TOKEN": "maybe"}, "KATIB_INJECT_PUSH_TOKEN"),
    ],
)
def test_bad_variables_name_themselves(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args([], environ)
    assert caught.value.field == name
    assert "\n" not in str(caught.value)
    assert "pydantic" not in str(caught.value)


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        Settings.from_args(["--no-such-flag"], {})
    assert caught.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
