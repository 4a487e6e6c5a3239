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


# -- sizing a run before it starts ------------------------------------------------------------

# Live activations of one U-Net forward, in units of its finest level's tensor (2F x C0 x h x w
# with the CFG batch): resnet temporaries plus the skip connections kept for the up path.
UNET_ACTIVATION_FACTOR = 12
# The VAE decodes 8 frames at a time; its last up block holds a few full-resolution tensors.
VAE_FRAMES_PER_CHUNK = 8
VAE_ACTIVATION_FACTOR = 6


def estimate_run_bytes(backbone, frames: int, height: int, width: int) -> int:
    """A generous estimate of the working memory of one generation (the U-Net's forward or the
    VAE's decode, whichever is larger), from the model's configs: enough to refuse, before any
    work, a run that cannot fit (512 frames at 4096x4096 asks for hundreds of GiB)."""
    itemsize = torch.empty((), dtype=backbone.dtype).element_size()
    f = backbone.vae_scale_factor
    c0 = int(backbone.unet.config.block_out_channels[0])
    unet = UNET_ACTIVATION_FACTOR * 2 * frames * c0 * (height // f) * (width // f) * itemsize
    c_vae = int(max(getattr(backbone.vae.config, "block_out_channels", (3,))))
    chunk = min(frames, VAE_FRAMES_PER_CHUNK)
    vae = VAE_ACTIVATION_FACTOR * chunk * c_vae * height * width * 4  # decoded in float32
    return max(unet, vae)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a run on ``device`` now (CUDA: free device memory; CPU: the kernel's
    MemAvailable), or None where it cannot be read."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        return int(_meminfo_kb("MemAvailable") * 1024)
    except OSError:
        return None


def _meminfo_kb(key: str) -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise OSError(key)


def check_run_fits(backbone, frames: int, height: int, width: int) -> None:
    """Refuse, in one line with the figures, a run whose estimate exceeds the free memory."""
    from starvid.errors import StarVidError

    need = estimate_run_bytes(backbone, frames, height, width)
    free = available_bytes(backbone.device)
    if free is not None and need > free:
        raise StarVidError(
            f"{frames} frames at {width}x{height} need about {need / 2**30:.1f} GiB of memory "
            f"and {free / 2**30:.1f} GiB are free on {backbone.device}: lower frames, height or "
            "width"
        )
