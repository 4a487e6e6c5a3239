"""CPU threads for a run: the cores other processes leave free, read when the run starts.

Torch's intra-op pool starts one thread per core, and its OpenMP threads spin while they wait.
On a shared CPU (a laptop, a free Spaces machine, a CI runner) that oversubscribes and runs
several times slower (``benchmarks/busy_cpu.py``; figures in docs/results.md). So a run counts
the cores busy with other work over a tenth of a second (``/proc/stat``) and takes the rest, at
least one. Sleeping OpenMP waits (``OMP_WAIT_POLICY=PASSIVE``) were tried and kept out: they
cost small models their second core. ``STARVID_THREADS`` overrides the choice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from starvid.errors import StarVidError

SAMPLE_S = 0.1


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def busy_cores(window_s: float = SAMPLE_S) -> float:
    """How many cores other work keeps busy now (this process sleeps while it measures); 0.0
    where it cannot be read."""
    first = _cpu_times()
    if first is None:
        return 0.0
    time.sleep(window_s)
    second = _cpu_times()
    total = second[1] - first[1]
    if total <= 0:
        return 0.0
    return (second[0] - first[0]) / total * (os.cpu_count() or 1)


def choose_threads(cores: int | None = None, busy: float | None = None) -> int:
    """Intra-op threads for a run: the cores left free, at least one (``STARVID_THREADS``
    overrides)."""
    override = os.environ.get("STARVID_THREADS", "").strip()
    if override:
        try:
            n = int(override)
        except ValueError as exc:
            raise StarVidError(f"STARVID_THREADS must be a whole number, not {override!r}") from exc
        if n < 1:
            raise StarVidError(f"STARVID_THREADS must be at least 1, not {n}")
        return n
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
