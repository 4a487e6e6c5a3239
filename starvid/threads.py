"""CPU threads for a run: as many as help, never more than the cores other processes leave free.

Torch's intra-op pool starts one thread per core, and its OpenMP threads spin while they wait.
On a shared CPU (a laptop, a free Spaces machine, a CI runner) that oversubscribes: measured on a
2-core machine, a default shapes run took 3.5x its quiet time beside one busy process and 50x and
more under heavier load. So a run picks its thread count when it starts:

- a small model (under ``SMALL_MODEL_PARAMS`` U-Net parameters: the shipped shapes and tiny
  models) gains nothing from intra-op threads (its ops are too small) and gets one thread;
- a large model gets the cores the other processes leave free (the 1-minute load average
  against the cores this process may run on), at least one;
- ``STARVID_THREADS`` overrides both.

``starvid/__init__.py`` also sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it) before
torch loads, so waiting threads sleep instead of spinning on a core another process needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from starvid.errors import StarVidError

SMALL_MODEL_PARAMS = 50_000_000


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores() -> float:
    """How many cores other processes keep busy (the 1-minute load average; 0 if unknown)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def choose_threads(unet_params: int, cores: int | None = None, busy: float | None = None) -> int:
    """Intra-op threads for a run of a U-Net with ``unet_params`` parameters."""
    override = os.environ.get("STARVID_THREADS", "").strip()
    if override:
        try:
            n = int(override)
        except ValueError as exc:
            raise StarVidError(f"STARVID_THREADS must be a whole number, not {override!r}") from exc
        if n < 1:
            raise StarVidError(f"STARVID_THREADS must be at least 1, not {n}")
        return n
    if unet_params < SMALL_MODEL_PARAMS:
        return 1
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, cores - int(round(busy))))


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
