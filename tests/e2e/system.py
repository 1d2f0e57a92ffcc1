"""The Katib installation the SDK e2e suite (sdk_e2e_test.py) runs against.

- ``KATIB_E2E_KUBECONFIG`` set: an installed pykatib (``kubectl apply -k infra/install``, kind in
  CI). The suite only talks to its API server, and to its DB manager at
  ``KATIB_E2E_DB_MANAGER_ADDRESS`` (a port-forward) to check what trials pushed.
- otherwise: the real test control plane (infra/testcluster) with the parts an install runs,
  started here as processes: ``katib-webhook`` (registered with infra/webhook's configurations,
  ``clientConfig.url`` instead of the Service, scoped to this suite's namespaces), both
  controllers per namespace, and a DB manager on MariaDB. The node agent runs trial Pods as
  local processes, so trials really push, each with the Python its image carries
  (``katib_testcluster.images``): our images (``TRIAL_IMAGE``, the sidecar) get this interpreter
  and import path; Katib's default images get a venv of CPython 3.8 or 3.10 without pykatib.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e.controllers import TRIAL_IMAGE
from katib_core import push_auth
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from pykatib import dbmanager

#: Every namespace of this suite carries it (the webhooks' namespaceSelector, log dumps in CI).
SUITE_LABEL = "pykatib.e2e/suite"
INJECTION = {"katib.kubeflow.org/metrics-collector-injection": "enabled"}
GROUP, VERSION = "kubeflow.org", "v1beta1"
WEBHOOK_MANIFESTS = Path("infra/webhook")
#: The install's push signing Secret (infra/components/push-auth).
PUSH_SECRET = "katib-push-auth"
#: This interpreter's import path, absolute: the node agent starts Pods in directories of their own.
PYTHONPATH = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)


@dataclass
class System:
    """What a test needs to know about the installation under test.

    Attributes:
        kubeconfig: admin access to its API server.
        api: a client on that kubeconfig.
        db_manager_address: its DB manager, reachable from this process.
        scope: the value of ``SUITE_LABEL`` on this run's namespaces.
        trial_image: the image of ``tune()`` trials (one with pykatib installed).
        installed: True for an installed system (kind), False for the test control plane.
        controllers: starts the controllers for one namespace (installed: they already watch all).
        db_token: the token for this suite's own DB-manager reads (an admin token when the install
            requires push tokens, i.e. Secret kubeflow/katib-push-auth exists; else None).
    """

    kubeconfig: Path
    api: client.ApiClient
    db_manager_address: str
    scope: str
    trial_image: str
    installed: bool
    controllers: Callable[[str], contextlib.AbstractContextManager[None]] = field(repr=False)
    db_token: Callable[[], str | None] = field(default=lambda: None, repr=False)

    @property
    def push_auth(self) -> bool:
        """Whether the DB manager requires push tokens (the official SDK's trials send none)."""
        return self.db_token() is not None

    def metric_logs(self, trial: str) -> list[tuple[str, str, str]]:
        """``(time, metric, value)`` of every row the DB manager holds for ``trial``."""
        with contextlib.closing(dbmanager.open_channel(self.db_manager_address)) as channel:
            logs = dbmanager.DBManagerClient(channel, token=self.db_token).get(trial, timeout=30)
        return [(log.time_stamp, log.metric.name, log.metric.value) for log in logs]

    @contextlib.contextmanager
    def namespace(self, stem: str) -> Iterator[str]:
        """A fresh namespace of this suite, served by the webhooks and the controllers."""
        core = client.CoreV1Api(self.api)
        name = f"e2e-{stem[:30].strip('-')}-{uuid.uuid4().hex[:5]}"
        labels = {**INJECTION, SUITE_LABEL: self.scope}
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        try:
            polling.wait_until(
                lambda: _has_default_token(core, name), timeout=60, what=f"ServiceAccount {name}/default"
            )
            with self.controllers(name):
                yield name
        finally:
            with contextlib.suppress(ApiException):
                core.delete_namespace(name)


def _has_default_token(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        account = core.read_namespaced_service_account("default", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    # Kubernetes >= 1.24 creates no token Secrets; the kubelet projects one.
    return bool(account.secrets) or _server_minor(core.api_client) >= 24


def _server_minor(api: client.ApiClient) -> int:
    version = client.VersionApi(api).get_code()
    return int("".join(ch for ch in version.minor if ch.isdigit()))


def from_environment(environ: Mapping[str, str]) -> System | None:
    """The installed system ``KATIB_E2E_KUBECONFIG`` names, or None to run on the test control plane."""
    kubeconfig = environ.get("KATIB_E2E_KUBECONFIG")
    if not kubeconfig:
        return None
    address = environ.get("KATIB_E2E_DB_MANAGER_ADDRESS")
    if not address:
        raise RuntimeError(
            "KATIB_E2E_DB_MANAGER_ADDRESS is not set: forward the DB manager's port, e.g."
            " `kubectl -n kubeflow port-forward service/katib-db-manager 16789:6789` and set it to 127.0.0.1:16789"
        )
    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    return System(
        kubeconfig=Path(kubeconfig),
        api=api,
        db_manager_address=address,
        scope=uuid.uuid4().hex[:10],
        trial_image=environ.get("KATIB_E2E_TRIAL_IMAGE", TRIAL_IMAGE),
        installed=True,
        controllers=lambda namespace: contextlib.nullcontext(),
        db_token=_admin_tokens(api),
    )


def _admin_tokens(api: client.ApiClient, namespace: str = "kubeflow") -> Callable[[], str | None]:
    """Admin tokens signed with the install's push secret (infra/install), or None without one."""
    try:
        secret: Any = client.CoreV1Api(api).read_namespaced_secret(PUSH_SECRET, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return lambda: None  # infra/overlays/katib-compatible
        raise
    signing = push_auth.parse_secrets(base64.b64decode(secret.data["secret"]).decode())[0]
    return lambda: push_auth.mint(signing, push_auth.Claims(push_auth.ANY, push_auth.ANY, int(time.time() + 600)))


# -- the test control plane -------------------------------------------------------------------


class Process:
    """A ``python -m PACKAGE`` child with this interpreter's import path, its output in ``log``."""

    def __init__(self, package: str, *args: str, log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        env = {**os.environ, "PYTHONPATH": PYTHONPATH}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", package, *args], env=env, stdout=subprocess.PIPE, stderr=self._out
        )

    def first_line(self, timeout: float = 60) -> str:
        """The first line the process prints (servers print their address)."""
        assert self.proc.stdout is not None
        return polling_readline(self.proc, timeout)

    def stop(self, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        self.terminate()
        self.wait(grace)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the exit, then SIGKILL; close the pipes."""
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._out.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def polling_readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of ``proc``'s stdout, or RuntimeError if it exits or stays silent for ``timeout``."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"no output from {proc.args!r} in {timeout}s")
    line = proc.stdout.readline().decode(errors="replace")
    if not line:
        raise RuntimeError(f"{proc.args!r} exited with {proc.wait(30)}")
    return line.strip()


def webhook_configurations(port: int, scope: str, name: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """infra/webhook's configurations named ``name``, pointed at 127.0.0.1:port, limited to this suite."""
    found = []
    for file in ("mutating-webhook-configuration.yaml", "validating-webhook-configuration.yaml"):
        manifest = yaml.safe_load((WEBHOOK_MANIFESTS / file).read_text())
        manifest["metadata"]["name"] = name
        for webhook in manifest["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_pem).decode(),
            }
            selector = webhook.setdefault("namespaceSelector", {})
            selector["matchLabels"] = {**selector.get("matchLabels", {}), SUITE_LABEL: scope}
        found.append(manifest)
    return found


@contextlib.contextmanager
def registered(api: client.ApiClient, manifests: list[dict[str, Any]]) -> Iterator[None]:
    admission: Any = client.AdmissionregistrationV1Api(api)  # plain dicts in: the client accepts them
    mutating, validating = manifests
    admission.create_mutating_webhook_configuration(mutating)
    try:
        admission.create_validating_webhook_configuration(validating)
        try:
            yield
        finally:
            admission.delete_validating_webhook_configuration(validating["metadata"]["name"])
    finally:
        admission.delete_mutating_webhook_configuration(mutating["metadata"]["name"])


@contextlib.contextmanager
def webhook(
    cluster: Cluster,
    *,
    db_address: str,
    scope: str,
    workdir: Path,
    extra_args: Sequence[str] = (),
    name: str = "webhook",
) -> Iterator[Process]:
    """``katib-webhook`` (with ``extra_args``, a serving certificate from ``cluster``'s CA) serving
    namespaces labelled ``scope`` until the block ends."""
    pair = cluster.pki.issue_serving_cert(f"katib-webhook-{scope}")
    cert_dir = workdir / f"{name}-cert"
    cert_dir.mkdir()
    (cert_dir / "tls.crt").write_bytes(pair.cert.read_bytes())
    (cert_dir / "tls.key").write_bytes(pair.key.read_bytes())
    # The node agent never runs an image's entrypoint: the sidecar (our image) gets a command.
    collector = shlex.join(["env", f"PYTHONPATH={PYTHONPATH}", sys.executable, "-m", "katib_metrics_collector"])
    hook = Process(
        "katib_webhook",
        "--host", "127.0.0.1", "--port", "0",
        "--cert-dir", str(cert_dir),
        "--kubeconfig", str(cluster.kubeconfig),
        "--db-manager-address", db_address,
        "--collector-command", collector,
        "--no-patch-ca-bundle",
        *extra_args,
        log=workdir / f"{name}.log",
    )  # fmt: skip
    try:
        line = hook.first_line()
        if "serving on https://127.0.0.1:" not in line:
            raise RuntimeError(f"katib-webhook did not start: {line}\n{hook.tail()}")
        port = int(line.rsplit(":", 1)[1])
        configurations = webhook_configurations(port, scope, f"pykatib-e2e-{scope}", cluster.pki.ca_pem)
        with registered(cluster.api_client, configurations):
            yield hook
    finally:
        hook.stop()


@contextlib.contextmanager
def controllers(
    *, kubeconfig: Path, db_address: str, namespace: str, workdir: Path, extra_args: Sequence[str] = ()
) -> Iterator[None]:
    """Both controllers as processes (``python -m``, with ``extra_args``), watching ``namespace`` only."""
    started = []
    try:
        for package in ("katib_experiment_controller", "katib_trial_controller"):
            args = [
                "--kubeconfig", str(kubeconfig),
                "--namespace", namespace,
                "--db-manager-address", db_address,
                "--lease-namespace", namespace,
                "--workers", "4",
                *extra_args,
            ]  # fmt: skip
            started.append(Process(package, *args, log=workdir / f"{namespace}-{package}.log"))
        yield
    finally:
        # Both at once: a controller may take a while to wind its watches down after SIGTERM.
        for process in started:
            process.terminate()
        for process in started:
            process.wait(10)
            print(f"--- {process.log.name}", process.tail(25), sep="\n")


def wait_for_webhooks(api: client.ApiClient, namespace: str) -> None:
    """Until the API server calls the webhook for this namespace (it picks configurations up asynchronously)."""
    custom = client.CustomObjectsApi(api)
    bad = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "probe"},
        "spec": {"maxTrialCount": 0},
    }

    def denied() -> bool:
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", bad, dry_run="All")
        except ApiException as exc:
            return exc.status == 400 and "katib.kubeflow.org" in str(exc.body)
        return False

    polling.wait_until(denied, timeout=60, what="the API server to call katib-webhook", interval=0.5)
