"""The documented install, as a new user runs it: a fresh venv, ``pip install --find-links
<wheelhouse> 'pykatib[local]'``, a script that tunes on this machine, and the ``pykatib`` CLI.

The wheels are the ones Pants built (what ``build-support/wheelhouse.sh`` collects); third-party
packages come from the package index. Any failure to install fails the test. Every Python the
client and local mode claim (``Requires-Python: >=3.10``, docs/sdk.md#pythons) is tried with its
real interpreter (pyenv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest
from katib_testsupport.pip import interpreter, pip_env

NAMES = ["pykatib", "pykatib_core", "pykatib_client", "pykatib_domain", "pykatib_local", "pykatib_suggest"]
NAMES += ["pykatib_dbmanager", "pykatib_pushauth", "pykatib_api"]

USER_SCRIPT = """
import pykatib as katib

def objective(parameters):
    import pykatib as katib
    x = float(parameters["x"])
    katib.report_metrics({"loss": (x - 1) ** 2})

client = katib.KatibClient(backend="local")
client.tune(name="first-hour", objective=objective, parameters={"x": katib.search.double(-3, 3)},
            objective_metric_name="loss", objective_type="minimize", max_trial_count=4,
            parallel_trial_count=2, metrics_collector_config={"kind": "Push"})
client.wait_for_experiment_condition("first-hour", polling_interval=0.5)
print("best", client.get_optimal_hyperparameters("first-hour").best_trial_name)
"""


def wheelhouse(tmp_path: Path) -> Path:
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name in NAMES:
        found = sorted(Path.cwd().rglob(f"{name}-*.whl"))
        if not found:
            pytest.fail(f"no {name} wheel in the sandbox (runtime_package_dependencies of install_test.py)")
        shutil.copy(found[-1], house)
    return house


#: The Pythons local mode claims: its oldest and newest, and every one between.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@pytest.mark.parametrize("version", PYTHONS)
def test_pip_install_pykatib_local_from_the_wheelhouse_then_tune(tmp_path: Path, version: str) -> None:
    env = pip_env({key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PEX"))})
    python = interpreter(version)
    subprocess.run([python, "-m", "venv", str(tmp_path / "venv")], check=True, env=env, timeout=300)
    bin_dir = tmp_path / "venv" / "bin"
    house = wheelhouse(tmp_path)
    install = subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", "--find-links", str(house), "pykatib[local]"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    installed = subprocess.run(
        [str(bin_dir / "pip"), "list", "--format=freeze"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "types-" not in installed.lower()  # type stubs are nobody's runtime dependency

    work = tmp_path / "user"
    work.mkdir()
    (work / "tune.py").write_text(textwrap.dedent(USER_SCRIPT))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [str(bin_dir / "python"), "tune.py"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("best first-hour-"), done.stdout
    version_of = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert version_of.stdout.strip() == version

    listed = subprocess.run(
        [str(bin_dir / "pykatib"), "get", "trials", "-e", "first-hour"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("first-hour-") == 4


def test_each_wheel_claims_the_pythons_it_is_tested_on(tmp_path: Path) -> None:
    """The trial path (pykatib, pykatib-core) claims 3.8+ (libs/sdk/pykatib/venv_test.py tries each);
    everything else claims 3.10+, the oldest Python the test above installs it on."""
    claims = {}
    for wheel in wheelhouse(tmp_path).iterdir():
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            lines = archive.read(metadata).decode().splitlines()
        claims[wheel.name.split("-")[0]] = next(line for line in lines if line.startswith("Requires-Python: "))
    trial_path = {"pykatib", "pykatib_core"}
    assert claims == {name: f"Requires-Python: >={'3.8' if name in trial_path else PYTHONS[0]}" for name in NAMES}
