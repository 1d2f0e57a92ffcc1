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
    assert (chosen.workers, chosen.events) == (8, "all")


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


def test_bad_values_exit() -> None:
    with pytest.raises(SystemExit):
        parse("--workers", "0")
    with pytest.raises(SystemExit):
        parse("-n", "a", "-A")
