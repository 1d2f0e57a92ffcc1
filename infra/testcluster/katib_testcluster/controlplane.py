"""Run etcd + kube-apiserver + kube-controller-manager + kube-scheduler on loopback.

`ControlPlane` is a context manager: free ports, a fresh PKI and a temp dir per instance, so
several can run on one machine at once. Binaries come from `KUBE_BIN` or the cache filled by
`infra/testcluster/build-k8s.sh`; etcd from Debian's `etcd-server`. Used by the pytest fixtures
(`pytest_plugin`) and by `python -m katib_testcluster`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import yaml
from kubernetes import client, config

from katib_testcluster import pki as pki_mod
from katib_testcluster import polling

log = logging.getLogger(__name__)
_T = TypeVar("_T")

K8S_VERSION = "1.20.2"
BUILD_COMMAND = "infra/testcluster/build-k8s.sh"
_SERVICE_CIDR = "10.96.0.0/24"
# Controllers that need clouds, node IPAM, volumes or CSR signing are off; the node agent plays
# the kubelet, so node lifecycle (which would taint our heartbeat-only node) is off too.
_KCM_CONTROLLERS = (
    "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,-persistentvolume-binder,"
    "-attachdetach,-persistentvolume-expander,-csrsigning,-csrapproving,-bootstrapsigner,"
    "-tokencleaner,-ttl"
)
_STOP_GRACE_SECONDS = 10.0
_PORT_CLASH = "address already in use"


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message names the component and its log tail."""


class MissingBinaryError(ControlPlaneError):
    """A binary is missing; the message says how to get it."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the four executables a control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path

    @classmethod
    def locate(cls, environ: Mapping[str, str] = os.environ) -> Binaries:
        """Find the binaries: Kubernetes ones in `$KUBE_BIN` or the build cache, etcd on PATH.

        Raises:
            MissingBinaryError: something is missing (the message has the command to fix it).
        """
        kube_dir = Path(environ["KUBE_BIN"]) if environ.get("KUBE_BIN") else cache_dir(environ)
        kube = {name: kube_dir / name for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
        missing = [str(path) for path in kube.values() if not os.access(path, os.X_OK)]
        etcd = shutil.which("etcd", path=environ.get("PATH")) or "/usr/bin/etcd"
        if not os.access(etcd, os.X_OK):
            missing.append("etcd (Debian package etcd-server)")
        if missing:
            raise MissingBinaryError(
                f"Kubernetes test binaries missing: {', '.join(missing)}.\n"
                f"Build them once per machine (5-13 min, needs root for apt) with:\n"
                f"    {BUILD_COMMAND}\n"
                f"or point KUBE_BIN at a directory holding kube-apiserver {K8S_VERSION}, "
                f"kube-controller-manager and kube-scheduler."
            )
        return cls(
            etcd=Path(etcd),
            kube_apiserver=kube["kube-apiserver"],
            kube_controller_manager=kube["kube-controller-manager"],
            kube_scheduler=kube["kube-scheduler"],
        )


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `build-k8s.sh` caches the binaries: `${PYKATIB_CACHE:-~/.cache/pykatib}/k8s-<v>`."""
    root = environ.get("PYKATIB_CACHE") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache/pykatib")
    return Path(root) / f"k8s-{K8S_VERSION}"


@dataclass(frozen=True)
class Ports:
    """Loopback ports of one control plane."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def pick(cls) -> Ports:
        """Ask the kernel for five free ports, holding all sockets so they differ."""
        sockets = [socket.socket() for _ in range(5)]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


class _Component:
    """One child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Only a foreign call runs between fork and exec, which is safe with threads around.
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )

    def exit_message(self) -> str | None:
        code = self.popen.poll()
        return None if code is None else f"{self.name} exited with code {code}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %ss; killing it", self.name, _STOP_GRACE_SECONDS)
        # Its process group may hold children even after the leader exited.
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


class ControlPlane:
    """A real Kubernetes 1.20 control plane on loopback, for tests.

    ```
    with ControlPlane() as cp:
        core = kubernetes.client.CoreV1Api(cp.api_client())
    ```

    Raises (from `start()` / `__enter__`):
        MissingBinaryError: binaries are missing (see `Binaries.locate`).
        ControlPlaneError: a component failed to start; the message has its log tail.
    """

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        parent_dir: Path | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self._binaries = binaries
        self._parent_dir = parent_dir
        self._startup_timeout = startup_timeout
        self._components: list[_Component] = []
        self._etcd_dir: Path | None = None
        self._dir: Path | None = None
        self._pki: pki_mod.Pki | None = None
        self._ports: Ports | None = None
        self.startup_seconds: float | None = None

    @property
    def dir(self) -> Path:
        """The run dir: `pki/`, `logs/<component>.log`, `kubeconfig`."""
        return _started(self._dir)

    @property
    def pki(self) -> pki_mod.Pki:
        return _started(self._pki)

    @property
    def ports(self) -> Ports:
        return _started(self._ports)

    @property
    def server(self) -> str:
        """The apiserver URL, `https://127.0.0.1:<port>`."""
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig for the admin (system:masters) token."""
        return self.dir / "kubeconfig"

    def api_client(self, *, token: str | None = None) -> client.ApiClient:
        """A new client for the admin, or for another static `token` (e.g. `pki.controller_token`)."""
        if token is None:
            admin: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig)
            )
            return admin
        configuration = client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.pki.ca.cert)
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(configuration)

    def log_path(self, component: str) -> Path:
        """Log file of `etcd`, `kube-apiserver`, `kube-controller-manager` or `kube-scheduler`."""
        return self.dir / "logs" / f"{component}.log"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start all components and wait until the apiserver serves and KCM works."""
        if self._dir is not None:
            raise RuntimeError(f"control plane already running in {self._dir}")
        binaries = self._binaries or Binaries.locate()
        began = time.monotonic()
        self._dir = Path(tempfile.mkdtemp(prefix="pykatib-k8s-", dir=self._parent_dir))
        (self._dir / "logs").mkdir()
        try:
            self._pki = pki_mod.create(self._dir / "pki")
            for attempt in range(3):
                self._ports = Ports.pick()
                self._write_kubeconfig()
                try:
                    self._start_components(binaries)
                    break
                except ControlPlaneError as exc:
                    self._stop_components()
                    if _PORT_CLASH not in str(exc) or attempt == 2:
                        raise
                    log.warning("port clash, retrying with new ports: %s", exc)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("control plane up at %s in %.1fs (dir %s)", self.server, self.startup_seconds, self._dir)

    def stop(self) -> None:
        """Terminate exactly the processes this instance started and remove its dirs."""
        self._stop_components()
        for path in (self._dir, self._etcd_dir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self._dir = self._etcd_dir = None

    def _start_components(self, binaries: Binaries) -> None:
        ports, pki, run_dir = self.ports, self.pki, self.dir
        # etcd's WAL fsyncs are the apiserver's main write latency; tmpfs makes them free.
        if self._etcd_dir is not None:  # left by an attempt that hit a port clash
            shutil.rmtree(self._etcd_dir, ignore_errors=True)
        self._etcd_dir = Path(tempfile.mkdtemp(prefix="pykatib-etcd-", dir=_fast_tmp_parent()))
        self._launch("etcd", _etcd_argv(binaries.etcd, ports, self._etcd_dir))
        self._launch("kube-apiserver", _apiserver_argv(binaries.kube_apiserver, ports, pki, run_dir))
        self._await(self._readyz, "kube-apiserver", "/readyz")
        self._launch("kube-controller-manager", _controller_manager_argv(binaries, ports, pki, run_dir))
        self._launch("kube-scheduler", _scheduler_argv(binaries, ports, run_dir))
        with self.api_client() as api_client:
            core = client.CoreV1Api(api_client)
            self._await(
                lambda: _default_token_ready(core),
                "kube-controller-manager",
                "the token Secret of ServiceAccount default/default",
            )
        self._await(lambda: _healthz(ports.scheduler), "kube-scheduler", "/healthz")

    def _await(self, probe: Callable[[], bool], component: str, what: str) -> None:
        """Wait for `probe`; on failure raise with the log tail of whichever component broke."""
        began = time.monotonic()
        try:
            polling.wait_until(
                probe,
                timeout=self._startup_timeout,
                what=f"{component}: {what}",
                abort=self._first_exit,
            )
        except polling.WaitTimeoutError as exc:
            message = str(exc)
            if "exited with code" not in message:  # a timeout: the awaited component is suspect
                path = self.log_path(component)
                message += f"; last lines of {path.name}:\n{_tail(path)}"
            raise ControlPlaneError(message) from None
        log.debug("%s: %s after %.1fs", component, what, time.monotonic() - began)

    def _launch(self, name: str, argv: Sequence[str]) -> _Component:
        component = _Component(name, argv, self.log_path(name))
        self._components.append(component)
        return component

    def _first_exit(self) -> str | None:
        for component in self._components:
            message = component.exit_message()
            if message is not None:
                return f"{message}; last lines of {component.log_path.name}:\n{_tail(component.log_path)}"
        return None

    def _stop_components(self) -> None:
        # Reverse start order: clients before the apiserver, the apiserver before etcd.
        while self._components:
            self._components.pop().stop()

    def _readyz(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.pki.admin_token}"}
        )
        return _get_ok(request, context) == b"ok"

    def _write_kubeconfig(self) -> None:
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "pykatib-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.pki.ca.cert)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.pki.admin_token}}],
            "contexts": [{"name": "pykatib-test", "context": {"cluster": "pykatib-test", "user": "admin"}}],
            "current-context": "pykatib-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        self.kubeconfig.chmod(0o600)


def _etcd_argv(etcd: Path, ports: Ports, data_dir: Path) -> list[str]:
    client_url = f"http://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(etcd),
        "--name=pykatib",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=pykatib={peer_url}",
        "--logger=zap",
    ]


def _apiserver_argv(binary: Path, ports: Ports, pki: pki_mod.Pki, run_dir: Path) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={run_dir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        f"--token-auth-file={pki.tokens_csv}",
        f"--service-account-key-file={pki.sa_key}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-cluster-ip-range={_SERVICE_CIDR}",
        "--endpoint-reconciler-type=none",  # keep 127.0.0.1 out of the `kubernetes` Endpoints
        "--authorization-mode=RBAC",
        # The node agent serves container logs on 127.0.0.1 with a cert of this CA (kubelet_logs).
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-certificate-authority={pki.ca.cert}",
        "--allow-privileged=true",
        # The 1.20 default admission plugins stay on: ServiceAccount, webhooks, TaintNodesByCondition.
    ]


def _kubeconfig_client_flags(run_dir: Path) -> list[str]:
    return [
        f"--kubeconfig={run_dir / 'kubeconfig'}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--port=0",  # no insecure port (1.20)
    ]


def _controller_manager_argv(binaries: Binaries, ports: Ports, pki: pki_mod.Pki, run_dir: Path) -> list[str]:
    return [
        str(binaries.kube_controller_manager),
        *_kubeconfig_client_flags(run_dir),
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={run_dir / 'kcm-certs'}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--controllers={_KCM_CONTROLLERS}",
    ]


def _scheduler_argv(binaries: Binaries, ports: Ports, run_dir: Path) -> list[str]:
    return [
        str(binaries.kube_scheduler),
        *_kubeconfig_client_flags(run_dir),
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={run_dir / 'scheduler-certs'}",
    ]


def _default_token_ready(core: client.CoreV1Api) -> bool:
    """KCM works once namespace `default` has its SA and the SA's token Secret exists."""
    account = core.read_namespaced_service_account("default", "default")
    for ref in account.secrets or ():
        if ref.name:
            core.read_namespaced_secret(ref.name, "default")
            return True
    return False


def _healthz(port: int) -> bool:
    # KCM and the scheduler serve self-signed certs and allow /healthz without authentication.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _get_ok(urllib.request.Request(f"https://127.0.0.1:{port}/healthz"), context) is not None


def _get_ok(request: urllib.request.Request, context: ssl.SSLContext) -> bytes | None:
    """The body of a 200 response, else None (other errors propagate)."""
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bytes(response.read()).strip() if response.status == 200 else None
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection open otherwise
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the starting thread dies, so a killed test run leaves no strays."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _fast_tmp_parent() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _started(value: _T | None) -> _T:
    if value is None:
        raise RuntimeError("the control plane is not running; call start() or use `with`")
    return value
