"""GPUs for local trials: which devices exist, and disjoint shares of them for concurrent trials.

``resources_per_trial={"gpu": N}`` (or ``nvidia.com/gpu`` in a trial's container limits) asks
for N devices; a trial starts only once N devices are free, and gets exactly those in
``CUDA_VISIBLE_DEVICES``. Devices come from ``CUDA_VISIBLE_DEVICES`` when the runner itself was
given some, else from ``nvidia-smi -L``; none on a machine without GPUs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence

from katib_core import quantities
from katib_core.errors import ValidationError

GPU_RESOURCE_NAMES = ("nvidia.com/gpu", "gpu")


def detect(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The GPU device ids this runner may hand out."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device.strip() for device in visible.split(",") if device.strip() and device.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def requested(limits: Mapping[str, object] | None) -> int:
    """GPUs a container asks for in its resource limits (0 if none)."""
    for name in GPU_RESOURCE_NAMES:
        value = (limits or {}).get(name)
        if value is not None:
            # Any quantity form Kubernetes takes: 1, "2", "1000m" (docs/local.md#gpus).
            return quantities.whole_count(value, field=f"resources.limits[{name}]")
    return 0


class GpuPool:
    """Hands out disjoint device sets; never more devices than exist."""

    def __init__(self, devices: Sequence[str]) -> None:
        self._free = list(devices)
        self._total = len(devices)
        self._cond = threading.Condition()

    @property
    def total(self) -> int:
        return self._total

    def check(self, count: int) -> None:
        """Raise ValidationError if ``count`` devices can never be had here."""
        if count > self._total:
            have = f"{self._total} GPU" + ("" if self._total == 1 else "s")
            raise ValidationError("resources_per_trial.gpu", f"a trial asks for {count} GPUs; this machine has {have}")

    def try_acquire(self, count: int) -> list[str] | None:
        """``count`` free devices, or None if they are not free now (0 → [])."""
        self.check(count)
        with self._cond:
            if count > len(self._free):
                return None
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def release(self, devices: Sequence[str]) -> None:
        with self._cond:
            self._free.extend(devices)
            self._cond.notify_all()
