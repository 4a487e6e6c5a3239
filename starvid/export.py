"""Outputs of a run: MP4/GIF videos, text files (plans, reports) and cross-attention maps (npz).

Frames are uint8 arrays shaped (frames, height, width, 3). Every writer creates the parent
folders, writes to a temporary file next to the target and renames it into place only once the
file is complete (an MP4 is read back and its frames counted), and turns file-system or encoder
failures into a one-line StarVidError: a full disk or a size limit never leaves a truncated
file behind a success.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from starvid.errors import StarVidError


def to_uint8(frames, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Float frames (numpy or torch, (F,H,W,3) or (F,3,H,W)) in `value_range` -> uint8 (F,H,W,3)."""
    if hasattr(frames, "detach"):  # torch tensor, without importing torch here
        frames = frames.detach().float().cpu().numpy()
    arr = np.asarray(frames, dtype=np.float32)
    if arr.ndim != 4:
        raise StarVidError(f"frames must be 4-D (frames, height, width, 3), got shape {arr.shape}")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    lo, hi = value_range
    arr = (arr - lo) / (hi - lo)
    return (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise StarVidError(
            f"frames must be a non-empty (frames, height, width, 3) array, got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        raise StarVidError(f"frames must be uint8 (use starvid.export.to_uint8), got {arr.dtype}")
    return arr


def upscale(frames: np.ndarray, min_size: int) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor giving a short side >= min_size."""
    arr = _check_frames(frames)
    short = min(arr.shape[1], arr.shape[2])
    factor = max(1, math.ceil(min_size / short)) if min_size > 0 else 1
    if factor > 1:
        arr = arr.repeat(factor, axis=1).repeat(factor, axis=2)
    return arr


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad by one edge row/column where needed: H.264 with yuv420p needs even sizes."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def _prepare_path(path: str | Path) -> Path:
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StarVidError(f"cannot create folder {path.parent}: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise StarVidError(f"output path is a folder, not a file: {path}")
    return path


@contextlib.contextmanager
def _atomic(path: Path, what: str) -> Iterator[Path]:
    """A temporary path next to ``path`` (same suffix) that replaces it when the block ends
    without error; on any error the temporary file is removed and a StarVidError raised."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except StarVidError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [""])[0]
        raise StarVidError(f"cannot write {what} {path}: {reason or type(exc).__name__}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_mp4(frames: np.ndarray, path: str | Path, fps: int = 8, min_size: int = 256) -> Path:
    """Write an H.264 (yuv420p) MP4; small videos are upscaled (nearest) to >= min_size px.

    The encoder's output is read back: a video with fewer frames than sent (the encoder failed,
    the disk filled up) is an error, and the target path is left untouched.
    """
    import imageio_ffmpeg

    if fps <= 0:
        raise StarVidError(f"fps must be positive, got {fps}")
    arr = np.ascontiguousarray(_even(upscale(frames, min_size)))
    path = _prepare_path(path)
    _, h, w, _ = arr.shape
    with _atomic(path, "video") as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w, h),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=8,
            macro_block_size=2,  # sizes are already even; 16 would resize the frames
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in arr:
            writer.send(frame)
        writer.close()
        try:
            written, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        except (OSError, RuntimeError) as exc:
            raise StarVidError(
                f"cannot write video {path}: the encoder's output is unreadable"
            ) from exc
        if written != len(arr):
            raise StarVidError(
                f"cannot write video {path}: the encoder wrote {written} of {len(arr)} frames "
                "(is the disk full?)"
            )
    return path


def write_gif(frames: np.ndarray, path: str | Path, fps: int = 8, min_size: int = 128) -> Path:
    """Write a looping GIF (for previews where MP4 is not shown)."""
    from PIL import Image

    if fps <= 0:
        raise StarVidError(f"fps must be positive, got {fps}")
    arr = upscale(frames, min_size)
    path = _prepare_path(path)
    images = [Image.fromarray(f) for f in arr]
    with _atomic(path, "GIF") as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )
    return path


def read_video(path: str | Path) -> np.ndarray:
    """Read an MP4 (or GIF) back as uint8 (frames, height, width, 3)."""
    path = Path(path)
    if not path.is_file():
        raise StarVidError(f"video not found: {path}")
    if path.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence

        with Image.open(path) as im:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = reader.__next__()
        w, h = meta["size"]
        frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in reader]
    except (OSError, RuntimeError) as exc:
        raise StarVidError(f"cannot read video {path}: {str(exc).splitlines()[0]}") from exc
    if not frames:
        raise StarVidError(f"video has no frames: {path}")
    return np.stack(frames)


def side_by_side(
    frames_a: np.ndarray,
    frames_b: np.ndarray,
    separator: int = 2,
    color: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Frames of two videos next to each other (e.g. baseline | guided), with a thin separator."""
    a, b = _check_frames(frames_a), _check_frames(frames_b)
    if a.shape[0] != b.shape[0] or a.shape[1] != b.shape[1]:
        raise StarVidError(
            f"side_by_side needs the same frame count and height, got {a.shape} and {b.shape}"
        )
    sep = np.empty((a.shape[0], a.shape[1], max(0, separator), 3), dtype=np.uint8)
    sep[...] = np.asarray(color, dtype=np.uint8)
    return np.concatenate([a, sep, b], axis=2)


def write_text(text: str, path: str | Path, what: str = "file") -> Path:
    """Write UTF-8 text (a plan, a report) atomically."""
    path = _prepare_path(path)
    with _atomic(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def save_maps(maps: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Save named attention maps as a compressed .npz of float16 arrays."""
    arrays = {}
    for name, value in maps.items():
        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number):
            raise StarVidError(f"map {name!r} is not numeric ({arr.dtype})")
        arrays[str(name)] = arr.astype(np.float16)
    path = _prepare_path(path)
    if path.suffix != ".npz":
        raise StarVidError(f"maps file must end in .npz: {path}")
    with _atomic(path, "maps") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def load_maps(path: str | Path) -> dict[str, np.ndarray]:
    """Load maps written by save_maps (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise StarVidError(f"maps file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise StarVidError(f"not a maps file (.npz) {path}: {str(exc).splitlines()[0]}") from exc
