"""Flags and environment of ``katib-webhook``, read once into ``Settings``.

Precedence: flag > environment > default. Collector sidecars default to katib-config's values
(resources 50m/10Mi/500Mi requested, 500m/100Mi/5Gi limited); ``--collector-config`` reads a
katib-config ``runtime.metricsCollectors`` list, so an existing Katib configuration carries over.
Flags are argparse's; the environment is ``WebhookEnv``, a pydantic-settings model, so a malformed
variable is an error naming it (docs/design.md).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import Field, field_validator

from katib_core import constants, durations, katib_config, validation
from katib_core.constants import CollectorKind
from katib_core.errors import ValidationError
from katib_core.pod_injection import DEFAULT_RESOURCES, CollectorImage, InjectionSettings
from katib_settings.env import EnvSettings

#: Our pull collector (StdOut and File); the image name is set by the deployment manifests.
DEFAULT_COLLECTOR_IMAGE: Final = "docker.io/pykatib/katib-metrics-collector:v0.1.0"
#: Katib's own TensorFlow-event collector speaks the same DB manager API.
KATIB_TFEVENT_IMAGE: Final = "docker.io/kubeflowkatib/tfevent-metrics-collector:v0.18.0"
#: Katib's controller identity: its requests are never mutated (matchConditions need k8s ≥ 1.28).
KATIB_CONTROLLER_USER: Final = "system:serviceaccount:kubeflow:katib-controller"
#: Pods with this label are Katib's own components (and this webhook): never mutated.
COMPONENT_LABEL: Final = "katib.kubeflow.org/component"
DEFAULT_WEBHOOK_CONFIGURATION: Final = "katib.kubeflow.org"
DEFAULT_SERVICE: Final = "katib-webhook"
DEFAULT_NAMESPACE: Final = "kubeflow"


class WebhookEnv(EnvSettings):
    """The variables the webhook reads; its flags win over them."""

    port: int = Field(8443, ge=0, le=65535, validation_alias="KATIB_WEBHOOK_PORT")
    cert_dir: str = Field("/tmp/cert", validation_alias="KATIB_WEBHOOK_CERT_DIR")
    core_namespace: str = Field(DEFAULT_NAMESPACE, validation_alias="KATIB_CORE_NAMESPACE")
    db_manager_address: str = Field("", validation_alias=constants.DB_MANAGER_ADDRESS_ENV)
    db_manager_service_ip: str | None = Field(None, validation_alias="KATIB_DB_MANAGER_SERVICE_IP")
    db_manager_service_port: int | None = Field(None, ge=1, le=65535, validation_alias="KATIB_DB_MANAGER_SERVICE_PORT")
    db_manager_service_namespace: str | None = Field(None, validation_alias="KATIB_DB_MANAGER_SERVICE_NAMESPACE")
    early_stopping_address: str = Field("", validation_alias="KATIB_EARLY_STOPPING_ADDRESS")
    inject_push_token: bool = Field(False, validation_alias="KATIB_INJECT_PUSH_TOKEN")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    kubeconfig: str | None = Field(None, validation_alias="KUBECONFIG")

    @field_validator("port", mode="before")
    @classmethod
    def _not_a_service_link(cls, value: object) -> object:
        # A Service named katib-webhook makes Kubernetes set KATIB_WEBHOOK_PORT=tcp://IP:443 in
        # every Pod of its namespace (service links): that is the Service's port, not ours.
        return 8443 if isinstance(value, str) and value.startswith("tcp://") else value

    def katib_db_manager_address(self) -> str:
        """Katib's ``KATIB_DB_MANAGER_SERVICE_{IP,PORT,NAMESPACE}``, else the default address."""
        host, port, namespace = (
            self.db_manager_service_ip,
            self.db_manager_service_port,
            self.db_manager_service_namespace,
        )
        if (host, port, namespace) == (None, None, None):
            return constants.DEFAULT_DB_MANAGER_ADDRESS
        host = host or "katib-db-manager"
        port = port or constants.DEFAULT_DB_MANAGER_PORT
        return f"{host}.{namespace}:{port}" if namespace else f"{host}:{port}"


@dataclass(frozen=True)
class TlsSettings:
    """Where the serving certificate lives and what a generated one covers."""

    cert_dir: Path
    cert_file: str = "tls.crt"
    key_file: str = "tls.key"
    ca_file: str = "ca.crt"
    #: SANs of a generated certificate.
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    #: Webhook configurations (mutating and validating) whose caBundle a generated CA goes into.
    webhook_configurations: tuple[str, ...] = (DEFAULT_WEBHOOK_CONFIGURATION,)
    patch_ca_bundle: bool = True
    #: Seconds between checks of the files for a rotated certificate.
    reload_interval: float = 10.0

    @property
    def cert_path(self) -> Path:
        return self.cert_dir / self.cert_file

    @property
    def key_path(self) -> Path:
        return self.cert_dir / self.key_file

    @property
    def ca_path(self) -> Path:
        return self.cert_dir / self.ca_file


@dataclass(frozen=True)
class AdmissionSettings:
    """What the handlers decide with."""

    injection: InjectionSettings = field(default_factory=InjectionSettings)
    validation: validation.ValidationSettings = field(default_factory=validation.ValidationSettings)
    #: Request users whose Pods are admitted unchanged.
    excluded_users: frozenset[str] = frozenset({KATIB_CONTROLLER_USER})
    #: Seconds one API read (owner, Trial, ConfigMap) may take.
    api_timeout: float = 4.0


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    tls: TlsSettings
    admission: AdmissionSettings
    #: None: in-cluster configuration (or ``KUBECONFIG``).
    kubeconfig: str | None
    #: Serve without a Kubernetes API: Pods are admitted unchanged, ConfigMap templates unread.
    standalone: bool
    log_level: str

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
        """Parse flags and env (argparse exits with status 2 on an unknown flag).

        Raises:
            ValidationError: a value is malformed; the error names the flag or variable.
        """
        args = _parser().parse_args(argv)
        env = WebhookEnv.from_environ(environ)
        port = env.port if args.port is None else args.port
        if not 0 <= port <= 65535:
            raise ValidationError("--port", f"{port} is not a port number")
        service, namespace = args.service_name, args.service_namespace or env.core_namespace
        dns = tuple(args.cert_dns_name) or (
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local",
        )
        tls = TlsSettings(
            cert_dir=Path(args.cert_dir or env.cert_dir),
            dns_names=dns,
            ip_addresses=tuple(args.cert_ip_address),
            webhook_configurations=tuple(args.webhook_configuration) or (DEFAULT_WEBHOOK_CONFIGURATION,),
            patch_ca_bundle=not args.no_patch_ca_bundle,
            reload_interval=durations.parse(args.cert_reload_interval, field="--cert-reload-interval"),
        )
        config = _katib_config(args.katib_config)
        collectors = _collectors(args, config)
        admission = AdmissionSettings(
            injection=InjectionSettings(
                db_manager_address=args.db_manager_address or env.db_manager_address or env.katib_db_manager_address(),
                collectors=collectors,
                early_stopping_address=args.early_stopping_address or env.early_stopping_address,
                inject_security_context=args.inject_security_context,
                push_token=args.inject_push_token or env.inject_push_token,
            ),
            validation=validation.ValidationSettings(
                # As Katib's webhook: an algorithm named in katib-config is admitted; its settings are
                # the service's to check (our own algorithms' are checked here, by their rule).
                algorithms=_names(args.algorithms, "--algorithms") | frozenset(config.suggestions),
                early_stopping_algorithms=_names(
                    args.early_stopping_algorithms, "--early-stopping-algorithms", empty=True
                )
                | frozenset(config.early_stoppings),
                collector_kinds=frozenset(kind for kind, image in collectors.items() if image.image),
            ),
            excluded_users=frozenset(args.exclude_user or (KATIB_CONTROLLER_USER,)),
            api_timeout=durations.parse(args.api_timeout, field="--api-timeout"),
        )
        return cls(
            host=args.host,
            port=port,
            tls=tls,
            admission=admission,
            kubeconfig=args.kubeconfig or env.kubeconfig,
            standalone=args.standalone,
            log_level=args.log_level or env.log_level,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib-webhook", description="Katib's admission webhooks: Experiment defaulting/validation, Pod injection."
    )
    add = parser.add_argument
    add("--host", default="0.0.0.0", help="address to listen on")  # - a Pod serves the apiserver
    add("--port", type=int, help="HTTPS port (0: any free; env KATIB_WEBHOOK_PORT, default 8443)")
    add("--cert-dir", help="tls.crt/tls.key (and ca.crt) (env KATIB_WEBHOOK_CERT_DIR, default /tmp/cert)")
    add("--service-name", default=DEFAULT_SERVICE, help="Service of the webhook (SANs of a generated cert)")
    add("--service-namespace", help=f"its namespace (env KATIB_CORE_NAMESPACE, default {DEFAULT_NAMESPACE})")
    add("--cert-dns-name", action="append", default=[], help="SAN of a generated cert (repeatable)")
    add("--cert-ip-address", action="append", default=[], help="IP SAN of a generated cert (repeatable)")
    add("--webhook-configuration", action="append", default=[], help="configuration to put a generated CA into")
    add("--no-patch-ca-bundle", action="store_true", help="do not patch caBundle with a generated CA")
    add("--cert-reload-interval", default="10s", help="how often to look for a rotated certificate")
    add("--kubeconfig", default=None, help="kubeconfig (default: env KUBECONFIG, else in-cluster)")
    add("--standalone", action="store_true", help="no Kubernetes API: Pods admitted unchanged (benchmarks)")
    add("--api-timeout", default="4s", help="limit of one API read during admission")
    add(
        "--db-manager-address",
        default="",
        help="injected as KATIB_DB_MANAGER_ADDRESS and -s-db (env KATIB_DB_MANAGER_ADDRESS, else Katib's"
        f" KATIB_DB_MANAGER_SERVICE_* variables, else {constants.DEFAULT_DB_MANAGER_ADDRESS})",
    )
    add("--early-stopping-address", default="", help="-s-earlystop (env KATIB_EARLY_STOPPING_ADDRESS)")
    add("--collector-image", action="append", default=[], metavar="KIND=IMAGE", help="sidecar image of a kind")
    add("--collector-config", default=None, help="YAML list as katib-config's runtime.metricsCollectors")
    add(
        "--katib-config",
        default=None,
        help="katib-config file (or its ConfigMap manifest): its suggestion and early-stopping algorithms are"
        " admitted; its metricsCollectors are used unless --collector-config is given",
    )
    add("--collector-image-pull-policy", default="IfNotPresent")
    add("--collector-command", default="", help="sidecar command instead of its image's entrypoint")
    for kind in ("request", "limit"):
        for resource, name in (("cpu", "cpu"), ("memory", "memory"), ("ephemeral-storage", "storage")):
            add(f"--collector-{name}-{kind}", default=DEFAULT_RESOURCES[kind + "s"][resource])
    add("--inject-security-context", action="store_true", help="copy the first container's securityContext")
    add(
        "--inject-push-token",
        action="store_true",
        help="authenticated pushes: give the reporting container env KATIB_TRIAL_TOKEN from the trial's"
        " <trial>-push-token Secret (env KATIB_INJECT_PUSH_TOKEN=true)",
    )
    add(
        "--exclude-user",
        action="append",
        default=[],
        help=f"never mutate this user's Pods (default {KATIB_CONTROLLER_USER})",
    )
    add("--algorithms", default=",".join(sorted(validation.PYKATIB_ALGORITHMS)), help="known suggestion algorithms")
    add("--early-stopping-algorithms", default=",".join(sorted(validation.PYKATIB_EARLY_STOPPING)))
    add("--log-level", help="DEBUG, INFO, WARNING… (env LOG_LEVEL, default INFO)")
    return parser


def _names(text: str, flag: str, *, empty: bool = False) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names and not empty:
        raise ValidationError(flag, "must name at least one algorithm")
    return names


def _katib_config(path: str | None) -> katib_config.KatibConfig:
    if not path:
        return katib_config.KatibConfig()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValidationError("--katib-config", f"cannot read {path}: {exc.strerror or exc}") from None
    return katib_config.loads(text, source=path)


def _collectors(args: argparse.Namespace, config: katib_config.KatibConfig) -> dict[str, CollectorImage]:
    resources = {
        group: {
            "cpu": getattr(args, f"collector_cpu_{group[:-1]}"),
            "memory": getattr(args, f"collector_memory_{group[:-1]}"),
            "ephemeral-storage": getattr(args, f"collector_storage_{group[:-1]}"),
        }
        for group in ("requests", "limits")
    }
    command = tuple(shlex.split(args.collector_command))

    def image(name: str, **overrides: Any) -> CollectorImage:
        merged = {group: {**values, **overrides.get(group, {})} for group, values in resources.items()}
        return CollectorImage(name, args.collector_image_pull_policy, merged, command=command)

    collectors: dict[str, CollectorImage] = {
        CollectorKind.STDOUT: image(DEFAULT_COLLECTOR_IMAGE),
        CollectorKind.FILE: image(DEFAULT_COLLECTOR_IMAGE),
        CollectorKind.TENSORFLOW_EVENT: CollectorImage(
            KATIB_TFEVENT_IMAGE,
            args.collector_image_pull_policy,
            {**resources, "limits": {**resources["limits"], "memory": "1Gi"}},
        ),
    }
    if args.collector_config:
        collectors.update(_read_collector_config(Path(args.collector_config), resources, args))
    elif config.metrics_collectors:
        where = f"{args.katib_config}: runtime.metricsCollectors"
        collectors.update(_collector_entries(list(config.metrics_collectors), where, resources, args))
    for entry in args.collector_image:
        kind, sep, name = entry.partition("=")
        if not sep or not kind:
            raise ValidationError("--collector-image", f"{entry!r} must be KIND=IMAGE")
        if name:
            collectors[kind] = image(name)
        else:
            collectors.pop(kind, None)  # KIND= removes a default
    return collectors


def _read_collector_config(
    path: Path, resources: Mapping[str, Mapping[str, str]], args: argparse.Namespace
) -> dict[str, CollectorImage]:
    try:
        entries = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError("--collector-config", f"cannot read {path}: {exc}") from None
    if isinstance(entries, dict):  # a whole katib-config: runtime.metricsCollectors
        entries = (entries.get("runtime") or {}).get("metricsCollectors")
    if not isinstance(entries, list):
        raise ValidationError("--collector-config", f"{path} must hold a list of {{kind, image, …}} entries")
    return _collector_entries(entries, f"--collector-config {path}", resources, args)


def _collector_entries(
    entries: list[Any], where: str, resources: Mapping[str, Mapping[str, str]], args: argparse.Namespace
) -> dict[str, CollectorImage]:
    out: dict[str, CollectorImage] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not entry.get("kind") or not entry.get("image"):
            raise ValidationError(f"{where}[{index}]", "needs kind and image")
        given = entry.get("resources") or {}
        merged = {group: {**resources[group], **(given.get(group) or {})} for group in ("requests", "limits")}
        wait = entry.get("waitAllProcesses")
        out[str(entry["kind"])] = CollectorImage(
            image=str(entry["image"]),
            image_pull_policy=str(entry.get("imagePullPolicy") or args.collector_image_pull_policy),
            resources=merged,
            wait_all_processes=bool(wait) if wait is not None else None,
            command=tuple(shlex.split(args.collector_command)),
        )
    return out
