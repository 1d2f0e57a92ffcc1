"""A PEP 503 "simple" index of the pykatib wheels Pants built, served on 127.0.0.1.

pykatib is not on PyPI yet. A Push trial of pykatib's ``tune()`` on an image without pykatib
runs ``pip install pykatib==<version>`` from ``pip_index_urls``. The SDK e2e suite therefore
serves the wheels (runtime_package_dependencies of ``tests/e2e:sdk``) as static files and passes
``["https://pypi.org/simple", <this index>]``, so h2 and the rest still come from PyPI. pip trusts
plain HTTP on loopback. Only trials on the test control plane reach it: their processes run on
this machine.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def find_wheels(names: Sequence[str], root: Path) -> list[Path]:
    """The newest wheel of each distribution in ``names`` (as in file names: ``pykatib_core``) under ``root``.

    Raises:
        FileNotFoundError: one is missing (not built: run under Pants).
    """
    found = []
    for name in names:
        wheels = sorted(root.rglob(f"{name}-*.whl"))
        if not wheels:
            raise FileNotFoundError(f"no {name} wheel under {root} (runtime_package_dependencies of tests/e2e:sdk)")
        found.append(wheels[-1])
    return found


def project(wheel: Path) -> str:
    """The PEP 503 normalized project name of a wheel file."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()


def build(wheels: Sequence[Path], root: Path) -> None:
    """Lay out ``root/simple/<project>/index.html`` linking ``root/files/<wheel>`` (with its sha256)."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    projects = []
    for wheel in wheels:
        shutil.copy2(wheel, files / wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        name = project(wheel)
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(_html(f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'))
        projects.append(name)
    links = "".join(f'<a href="{name}/">{name}</a>' for name in sorted(projects))
    (root / "simple" / "index.html").write_text(_html(links))


def _html(body: str) -> str:
    head = '<meta name="pypi:repository-version" content="1.0">'
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>\n"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve ``root`` (laid out by ``build``) on a free port of 127.0.0.1; yields the index URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="wheel-index", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
