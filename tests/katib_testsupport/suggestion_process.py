"""Run a packaged ``katib-suggestion`` PEX as a real process, as Katib's controllers see it.

Standard library only, like ``processes.DBManagerProcess``, whose pattern it follows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Where ``runtime_package_dependencies`` puts the packaged service in a test sandbox.
SUGGESTION_PEX = Path("katib-suggestion.pex").absolute()


class SuggestionProcess:
    """``katib-suggestion`` started on 127.0.0.1 and a free port; ``address`` once it serves."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None, pex: Path = SUGGESTION_PEX) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(pex), "--listen-address", "127.0.0.1:0", *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if " on 127.0.0.1:" not in line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"katib-suggestion did not start: {line}{err}")
        self.address = line.split(" on ")[1].split()[0]
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process and return its exit status; its stderr is in ``self.stderr`` afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def __enter__(self) -> SuggestionProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc.poll() is None:
            self.stop(signal.SIGKILL)


def run_suggestion(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``katib-suggestion`` to completion (for error paths) and capture its output."""
    return subprocess.run(
        [sys.executable, str(SUGGESTION_PEX), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


__all__: Sequence[str] = ["SUGGESTION_PEX", "SuggestionProcess", "run_suggestion"]
