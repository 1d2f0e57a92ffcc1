"""mysql-connector's C extension, made to load despite the system's older OpenSSL.

The extension links the OpenSSL 3.2+ it vendors (``mysql/vendor/libssl.so.3``). Python loads
the system's ``libcrypto.so.3``/``libssl.so.3`` (OpenSSL 3.0 on Debian 12) as soon as anything
imports ``hashlib`` or ``ssl`` — pex's own bootstrap does — and the dynamic loader then reuses
those (same soname) for the extension, which fails to resolve its symbols; mysql-connector
silently falls back to its pure-Python protocol, several times slower.

``main`` calls ``reexec_with_vendored_openssl`` before anything else: if the extension cannot
load for that reason, the process restarts once with the vendored libraries preloaded. They
are newer builds of the same ABI, so Python's own ``ssl``/``hashlib`` keep working.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_MARK = "PYKATIB_VENDORED_OPENSSL"


def cext_error() -> str | None:
    """Why mysql-connector's C extension does not load here, or None if it does."""
    try:
        import _mysql_connector  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def vendored_openssl_env(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """``environ`` with mysql-connector's own OpenSSL preloaded, or None when that cannot help."""
    environ = dict(os.environ if environ is None else environ)
    spec = importlib.util.find_spec("mysql")
    if spec is None or not spec.submodule_search_locations:
        return None
    vendor = Path(next(iter(spec.submodule_search_locations))) / "vendor"
    libs = [vendor / "libcrypto.so.3", vendor / "libssl.so.3"]
    if not all(lib.is_file() for lib in libs):
        return None
    preload = [str(lib) for lib in libs] + [p for p in environ.get("LD_PRELOAD", "").split(":") if p]
    return {**environ, "LD_PRELOAD": ":".join(preload), _MARK: "1"}


def reexec_with_vendored_openssl() -> None:
    """Restart the process with mysql-connector's OpenSSL preloaded when that is what it lacks.

    Does nothing when the extension loads, is absent, or this is already the restarted process.
    """
    error = cext_error()
    if error is None or "OPENSSL" not in error or os.environ.get(_MARK):
        return
    env = vendored_openssl_env()
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
