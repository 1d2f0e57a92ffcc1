"""Flags every controller shares, parsed once in ``main`` (flag > env > default).

Katib's env names are accepted: ``KATIB_DB_MANAGER_SERVICE_IP``/``_NAMESPACE``/``_PORT`` build
the DB manager address, ``KATIB_CORE_NAMESPACE`` is where the leader Lease lives. Flags are
argparse's (each controller adds its own to ``parser``); the variables are ``OperatorEnv``, a
pydantic-settings model, so a malformed one is an error naming it (docs/design.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from pydantic import Field

from katib_core import constants
from katib_core.errors import ValidationError
from katib_settings.env import EnvSettings

#: Env default of ``--push-auth-secret-file``.
PUSH_AUTH_SECRET_FILE_ENV: Final = "KATIB_PUSH_AUTH_SECRET_FILE"


@dataclass(frozen=True)
class OperatorSettings:
    """Connection, scope, concurrency and leadership of one controller process."""

    db_manager_address: str
    namespaces: tuple[str, ...]
    kubeconfig: str | None
    context: str | None
    workers: int
    leader_elect: bool
    lease_name: str
    lease_namespace: str
    identity: str
    liveness: str | None
    log_level: str
    events: str = "all"
    #: Authenticated pushes: the DB manager's secret file (its first secret signs our tokens).
    push_auth_secret_file: Path | None = None

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


class OperatorEnv(EnvSettings):
    """The variables a controller reads (empty ones count as unset)."""

    db_manager_service_ip: str | None = Field(None, validation_alias="KATIB_DB_MANAGER_SERVICE_IP")
    db_manager_service_namespace: str | None = Field(None, validation_alias="KATIB_DB_MANAGER_SERVICE_NAMESPACE")
    db_manager_service_port: int | None = Field(None, ge=1, le=65535, validation_alias="KATIB_DB_MANAGER_SERVICE_PORT")
    core_namespace: str = Field("kubeflow", validation_alias="KATIB_CORE_NAMESPACE")
    pod_name: str | None = Field(None, validation_alias="POD_NAME")
    push_auth_secret_file: Path | None = Field(None, validation_alias=PUSH_AUTH_SECRET_FILE_ENV)

    def katib_address(self) -> str | None:
        """Katib's ``KATIB_DB_MANAGER_SERVICE_*`` address, if any of them is set."""
        if (self.db_manager_service_ip, self.db_manager_service_namespace, self.db_manager_service_port) == (None,) * 3:
            return None
        host = self.db_manager_service_ip or "katib-db-manager"
        namespace = self.db_manager_service_namespace or self.core_namespace
        return f"{host}.{namespace}:{self.db_manager_service_port or constants.DEFAULT_DB_MANAGER_PORT}"


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The shared flags; a controller adds its own before parsing."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--db-manager-address", help=f"host:port of the DB manager (default {constants.DEFAULT_DB_MANAGER_ADDRESS})"
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG, else in-cluster)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--workers", type=int, default=8, help="reconciles in parallel (default 8)")
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a coordination.k8s.io/v1 Lease before reconciling (default on)",
    )
    p.add_argument("--lease-namespace", help="namespace of the Lease (default $KATIB_CORE_NAMESPACE or kubeflow)")
    p.add_argument("--lease-name", help="name of the Lease (default the program name)")
    p.add_argument("--identity", help="this replica's name in the Lease (default $POD_NAME or host name + random)")
    p.add_argument("--liveness", help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--events",
        default="all",
        choices=["all", "warnings", "none"],
        help="Kubernetes Events to post: all (Katib's JobCreated, JobRunning…), only warnings, or none",
    )
    p.add_argument(
        "--push-auth-secret-file",
        help="authenticated pushes: the DB manager's secret file (one secret per line, the first signs);"
        f" the controller signs its own and the trials' tokens with it (env {PUSH_AUTH_SECRET_FILE_ENV})",
    )
    return p


def from_args(prog: str, args: argparse.Namespace, environ: Mapping[str, str]) -> OperatorSettings:
    """Settings from parsed flags and ``environ``; a bad value exits with status 2 and one line."""
    if args.workers < 1:
        _exit(prog, "--workers must be at least 1")
    try:
        env = OperatorEnv.from_environ(environ)
    except ValidationError as exc:
        _exit(prog, str(exc))
    identity = args.identity or env.pod_name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    secret_file = args.push_auth_secret_file or env.push_auth_secret_file
    return OperatorSettings(
        db_manager_address=args.db_manager_address or env.katib_address() or constants.DEFAULT_DB_MANAGER_ADDRESS,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        context=args.context,
        workers=args.workers,
        leader_elect=args.leader_elect,
        lease_name=args.lease_name or prog,
        lease_namespace=args.lease_namespace or env.core_namespace,
        identity=identity,
        liveness=args.liveness,
        log_level=args.log_level,
        events=args.events,
        push_auth_secret_file=Path(secret_file) if secret_file else None,
    )


def _exit(prog: str, message: str) -> NoReturn:
    """One line and status 2, as argparse's own errors."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse(
    prog: str, description: str, argv: Sequence[str] | None, environ: Mapping[str, str] | None = None
) -> OperatorSettings:
    """Parse only the shared flags."""
    return from_args(prog, parser(prog, description).parse_args(argv), os.environ if environ is None else environ)
