"""Command-line flags and environment of ``katib-suggestion``, read once into ``Settings``.

Precedence: flag > env var > default. Flags are argparse's; the variables are ``SuggestionEnv``, a
pydantic-settings model, so a malformed one is an error naming it. ``KATIB_SUGGESTION_LISTEN_ADDRESS``
exists for images whose command line cannot be set: Katib's katib-config gives an early-stopping
container only an image, so that image sets its port (6788) through the environment (docs/suggestion.md).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import Field

from katib_core.errors import ValidationError
from katib_settings.env import EnvSettings

DEFAULT_LISTEN_ADDRESS = "0.0.0.0:6789"
_ADDRESS = re.compile(r"(\[[0-9a-fA-F:]*\]|[^:\s]*):\d{1,5}")


class SuggestionEnv(EnvSettings):
    """The service's environment variables (flags win)."""

    listen_address: str = Field(DEFAULT_LISTEN_ADDRESS, validation_alias="KATIB_SUGGESTION_LISTEN_ADDRESS")
    max_studies: int = Field(64, ge=1, validation_alias="KATIB_SUGGESTION_MAX_STUDIES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")


@dataclass(frozen=True)
class Settings:
    """Everything the process needs, validated."""

    listen_address: str
    workers: int
    max_studies: int
    db_timeout: float
    log_level: str
    #: Where SetTrialStatus finds Trials: a kubeconfig (None: in a Pod, its service account).
    kubeconfig: str | None = None
    #: Their namespace (None: in a Pod its own, else found by the trial's name).
    trial_namespace: str | None = None
    #: Find a Trial by its name in every namespace, also in a Pod (a service shared by namespaces).
    all_trial_namespaces: bool = False

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
        """Parse flags and env. argparse exits with status 2 and one line on a bad flag.

        Raises:
            ValidationError: a value is malformed; the error names the flag or variable.
        """
        args = _parser().parse_args(argv)
        env = SuggestionEnv.from_environ(environ)
        address = args.listen_address or env.listen_address
        if not _ADDRESS.fullmatch(address):
            where = "--listen-address" if args.listen_address else "KATIB_SUGGESTION_LISTEN_ADDRESS"
            raise ValidationError(where, f"{address!r} is not HOST:PORT")
        if args.workers < 1:
            raise ValidationError("--workers", "must be at least 1")
        if args.max_studies is not None and args.max_studies < 1:
            raise ValidationError("--max-studies", "must be at least 1")
        if args.trial_namespace and args.all_trial_namespaces:
            raise ValidationError("--all-trial-namespaces", "contradicts --trial-namespace")
        if not args.db_timeout > 0:
            raise ValidationError("--db-timeout", "must be a positive number of seconds")
        return cls(
            listen_address=address,
            workers=args.workers,
            max_studies=args.max_studies or env.max_studies,
            db_timeout=args.db_timeout,
            log_level=(args.log_level or env.log_level).upper(),
            kubeconfig=args.kubeconfig or environ.get("KUBECONFIG") or None,  # - kubectl's variable
            trial_namespace=args.trial_namespace or None,
            all_trial_namespaces=args.all_trial_namespaces,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib-suggestion",
        description="pykatib's algorithms over Katib's gRPC APIs (api.v1.beta1.Suggestion and EarlyStopping).",
    )
    add = parser.add_argument
    add(
        "--listen-address",
        help=f"HOST:PORT to serve on (env KATIB_SUGGESTION_LISTEN_ADDRESS, default {DEFAULT_LISTEN_ADDRESS})",
    )
    add("--workers", type=int, default=8, help="threads answering calls")
    add(
        "--max-studies",
        type=int,
        help="Experiments whose algorithm state is kept in memory; older ones are rebuilt from their"
        " trials when asked again (env KATIB_SUGGESTION_MAX_STUDIES, default 64)",
    )
    add("--db-timeout", type=float, default=10.0, help="seconds per DB manager call (medianstop reads metric logs)")
    add(
        "--kubeconfig",
        help="SetTrialStatus marks Trials EarlyStopped through this cluster (env KUBECONFIG; in a Pod,"
        " its service account; neither: SetTrialStatus answers FAILED_PRECONDITION)",
    )
    add(
        "--trial-namespace",
        help="namespace of the Trials SetTrialStatus names (default: in a Pod its own, as Katib's"
        " per-Experiment service; else the one namespace with a Trial of that name)",
    )
    add(
        "--all-trial-namespaces",
        action="store_true",
        help="find SetTrialStatus's Trial by name in every namespace, also in a Pod (one service shared by"
        " namespaces, as infra/suggestion deploys it)",
    )
    add("--log-level", help="DEBUG, INFO, WARNING… (env LOG_LEVEL, default INFO)")
    return parser
