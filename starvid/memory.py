"""Peak memory of a block of work, on CUDA and on the CPU.

On CUDA ``torch.cuda.max_memory_allocated`` after a reset; on CPU the kernel's resident-set
high-water mark (``VmHWM``), reset at the start by writing ``5`` to ``/proc/self/clear_refs``;
where that is not possible, a thread samples the RSS every 2 ms. ``working_mb`` is the peak
minus what was in use when the block started (model weights etc.).
"""

from __future__ import annotations

import threading

import torch


class PeakMemory:
    """Peak memory of a block in MB (see the module docstring for how)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        self.start_mb = _rss_mb()
        if not _reset_hwm():
            self._sampled = int(self.start_mb * 1024)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, int(_rss_mb() * 1024))

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._sampled / 1024, _rss_mb())
        else:
            self.peak_mb = _status_kb("VmHWM") / 1024

    @property
    def working_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)


def _status_kb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise OSError(key)


def _rss_mb() -> float:
    try:
        return _status_kb("VmRSS") / 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kb("VmHWM")
        return True
    except OSError:
        return False
