import pytest

from katib_operator import settings


def parse(*argv: str, **environ: str) -> settings.OperatorSettings:
    return settings.parse("katib-x", "test", list(argv), environ)


def test_defaults() -> None:
    chosen = parse(POD_NAME="pod-1")
    assert chosen.db_manager_address == "katib-db-manager.kubeflow:6789"
    assert chosen.clusterwide
    assert (chosen.leader_elect, chosen.lease_name, chosen.lease_namespace, chosen.identity) == (
        True,
        "katib-x",
        "kubeflow",
        "pod-1",
    )
    assert (chosen.workers, chosen.events, chosen.push_auth_secret_file) == (8, "all", None)


def test_flags_win_over_katibs_env_names() -> None:
    env = {
        "KATIB_DB_MANAGER_SERVICE_IP": "db",
        "KATIB_CORE_NAMESPACE": "katib",
        "KATIB_DB_MANAGER_SERVICE_PORT": "7000",
    }
    assert parse(**env).db_manager_address == "db.katib:7000"
    assert parse(**env).lease_namespace == "katib"
    chosen = parse("--db-manager-address", "h:1", "-n", "a", "-n", "b", "--no-leader-elect", **env)
    assert chosen.db_manager_address == "h:1"
    assert chosen.namespaces == ("a", "b")
    assert not chosen.clusterwide
    assert not chosen.leader_elect


@pytest.mark.parametrize(
    ("environ", "address"),
    [
        ({"KATIB_DB_MANAGER_SERVICE_NAMESPACE": "ns"}, "katib-db-manager.ns:6789"),
        ({"KATIB_DB_MANAGER_SERVICE_PORT": "7000"}, "katib-db-manager.kubeflow:7000"),
        ({"KATIB_DB_MANAGER_SERVICE_IP": "", "KATIB_CORE_NAMESPACE": ""}, "katib-db-manager.kubeflow:6789"),
    ],
)
def test_katib_address_parts_and_empty_variables(environ: dict[str, str], address: str) -> None:
    assert parse(**environ).db_manager_address == address


def test_push_secret_file_flag_beats_env() -> None:
    env = {settings.PUSH_AUTH_SECRET_FILE_ENV: "/env/secret"}
    assert str(parse(**env).push_auth_secret_file) == "/env/secret"
    assert str(parse("--push-auth-secret-file", "/flag/secret", **env).push_auth_secret_file) == "/flag/secret"


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--workers", "0"], {}, "--workers"),
        (["-n", "a", "-A"], {}, "-A/--all-namespaces"),
        (["--log-level", "LOUD"], {}, "--log-level"),
        ([], {"KATIB_DB_MANAGER_SERVICE_PORT": "http"}, "KATIB_DB_MANAGER_SERVICE_PORT"),
        ([], {"KATIB_DB_MANAGER_SERVICE_PORT": "70000"}, "KATIB_DB_MANAGER_SERVICE_PORT"),
    ],
)
def test_bad_values_exit_2_with_one_line_naming_them(
    argv: list[str], environ: dict[str, str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(*argv, **environ)
    assert caught.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("katib-x: error: ")
    assert named in last
    assert "pydantic" not in last
