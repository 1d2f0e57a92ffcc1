import pytest

from katib_core.errors import ValidationError

# Relative: ruff groups it the same whether or not it sees this package's __init__.py.
from .settings import Settings


def test_defaults_serve_katibs_suggestion_port() -> None:
    settings = Settings.from_args([], {})
    assert settings.listen_address == "0.0.0.0:6789"
    assert (settings.workers, settings.max_studies, settings.db_timeout, settings.log_level) == (8, 64, 10.0, "INFO")


def test_kubernetes_access_for_set_trial_status() -> None:
    assert (Settings.from_args([], {}).kubeconfig, Settings.from_args([], {}).trial_namespace) == (None, None)
    from_env = Settings.from_args(["--all-trial-namespaces"], {"KUBECONFIG": "/etc/kube/config"})
    assert (from_env.kubeconfig, from_env.all_trial_namespaces) == ("/etc/kube/config", True)
    flags = Settings.from_args(["--kubeconfig", "k", "--trial-namespace", "team-a"], {"KUBECONFIG": "other"})
    assert (flags.kubeconfig, flags.trial_namespace) == ("k", "team-a")


def test_flag_beats_env() -> None:
    env = {"KATIB_SUGGESTION_LISTEN_ADDRESS": "0.0.0.0:6788", "KATIB_SUGGESTION_MAX_STUDIES": "5", "LOG_LEVEL": "debug"}
    from_env = Settings.from_args([], env)
    assert (from_env.listen_address, from_env.max_studies, from_env.log_level) == ("0.0.0.0:6788", 5, "DEBUG")
    flags = Settings.from_args(["--listen-address", "[::]:7000", "--max-studies", "9", "--log-level", "warning"], env)
    assert (flags.listen_address, flags.max_studies, flags.log_level) == ("[::]:7000", 9, "WARNING")


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--listen-address", "6789"], {}, "--listen-address"),
        ([], {"KATIB_SUGGESTION_LISTEN_ADDRESS": "host"}, "KATIB_SUGGESTION_LISTEN_ADDRESS"),
        ([], {"KATIB_SUGGESTION_MAX_STUDIES": "0"}, "KATIB_SUGGESTION_MAX_STUDIES"),
        (["--max-studies", "0"], {}, "--max-studies"),
        (["--workers", "0"], {}, "--workers"),
        (["--db-timeout", "0"], {}, "--db-timeout"),
        (["--trial-namespace", "a", "--all-trial-namespaces"], {}, "--all-trial-namespaces"),
    ],
)
def test_bad_values_name_the_flag_or_variable(argv: list[str], env: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args(argv, env)
    assert caught.value.field == named
