"""A batch's folder: one run folder per job, written whole or not at all, and checked on reruns.

::

    DIR/manifest.json              what ran, with which settings and code (``manifest``)
    DIR/ITEM-sSEED/                one job: the run folder of ``starvid.run.save_run``
        guided.mp4, baseline.mp4, side_by_side.mp4, plan.json, report.json, maps.npz
        frames.npz                 the videos' exact uint8 frames ("guided", "baseline"): the
                                   MP4s are lossy H.264, and scorers read these
        item.json                  the item (prompt, suite facts), seed, and which process ran it
    DIR/.tmp-ITEM-sSEED-*/         a job being written; renamed to ITEM-sSEED/ when complete

A job's folder is written under a temporary name and renamed once every file is in it, so a
folder with the job's name is complete unless something changed it later; ``folder_problem``
reads every file back to tell.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from starvid import export
from starvid.batch.items import BatchItem, Job
from starvid.errors import StarVidError
from starvid.plan import read_plan_file
from starvid.report import RunReport
from starvid.run import RUN_FILES, RunResult, save_run

ITEM_FILE = "item.json"
FRAMES_FILE = "frames.npz"
TMP_PREFIX = ".tmp-"
ARMS = ("guided", "baseline")


def _run_keys(baseline: bool) -> list[str]:
    """The ``starvid.run.RUN_FILES`` a job writes (no baseline videos without a baseline)."""
    return [k for k in RUN_FILES if baseline or k not in ("baseline", "side_by_side")]


def job_files(baseline: bool) -> list[str]:
    """The files a finished job's folder holds."""
    return [RUN_FILES[k] for k in _run_keys(baseline)] + [FRAMES_FILE, ITEM_FILE]


def new_job_folder(job: Job, out: Path) -> Path:
    """A temporary folder in ``out`` for a job's run (``remove_temporary`` clears leftovers)."""
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{job.name}-", dir=out))


def write_job(
    result: RunResult, job: Job, out: Path, record: dict, written: Path | None = None
) -> Path:
    """Write a finished job's folder in ``out`` atomically; returns the folder.

    `record` (process, host, times) goes into ``item.json`` next to the item and seed.
    ``written``: the temporary folder the run was already saved into (``new_job_folder``).
    """
    tmp = written or new_job_folder(job, out)
    try:
        if written is None:
            save_run(result, tmp)
        frames = {"guided": result.guided.frames}
        if result.baseline is not None:
            frames["baseline"] = result.baseline.frames
        np.savez_compressed(tmp / FRAMES_FILE, **frames)
        item = {"item": job.item.to_dict(), "seed": job.seed, **record}
        export.write_text(json.dumps(item, indent=2, ensure_ascii=False) + "\n", tmp / ITEM_FILE)
        tmp.chmod(0o755)
        final = out / job.name
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except OSError as exc:
        raise StarVidError(f"cannot write {out / job.name}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def remove_temporary(out: Path) -> list[Path]:
    """Remove the temporary folders that interrupted runs left in ``out``; returns them."""
    stale = [p for p in out.glob(f"{TMP_PREFIX}*") if p.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def read_frames(folder: Path) -> dict[str, np.ndarray]:
    """A job's exact frames by arm ("guided", and "baseline" when one ran)."""
    path = folder / FRAMES_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            frames = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise StarVidError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    for arm, video in frames.items():
        if arm not in ARMS or video.dtype != np.uint8 or video.ndim != 4:
            raise StarVidError(f"{path}: {arm!r} is not a video's uint8 frames")
    return frames


def read_job_record(folder: Path) -> tuple[BatchItem, int, dict]:
    """(item, seed, the whole record) of a job folder's ``item.json``."""
    path = folder / ITEM_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return BatchItem.from_dict(record["item"]), int(record["seed"]), record
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StarVidError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc


def _video_frames(path: Path) -> int:
    import imageio_ffmpeg

    try:
        return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
    except (OSError, RuntimeError) as exc:
        raise StarVidError(f"cannot read video {path}") from exc


def folder_problem(folder: Path, job: Job, baseline: bool) -> str | None:
    """Why ``folder`` is not `job`'s finished run (a missing, unreadable or foreign file), or None.

    Every file is read back: the JSON files are validated, the npz files opened, the videos'
    frames counted against the report.
    """
    if not folder.is_dir():
        return "not run yet"
    missing = [name for name in job_files(baseline) if not (folder / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        item, seed, _ = read_job_record(folder)
        report = RunReport.read(folder / RUN_FILES["report"])
        read_plan_file(folder / RUN_FILES["plan"])
        export.load_maps(folder / RUN_FILES["maps"])
        frames = read_frames(folder)
        counts = {
            RUN_FILES[k]: _video_frames(folder / RUN_FILES[k])
            for k in _run_keys(baseline)
            if RUN_FILES[k].endswith(".mp4")
        }
    except StarVidError as exc:
        return str(exc)
    if item != job.item or seed != job.seed:
        return f"{ITEM_FILE} names another job ({item.id}, seed {seed})"
    if report.prompt != job.item.prompt or report.seed != job.seed:
        return "report.json is another run's"
    arms = ARMS if baseline else ARMS[:1]
    if sorted(frames) != sorted(arms):
        return f"{FRAMES_FILE} holds {', '.join(sorted(frames))}, not {', '.join(arms)}"
    counts |= {f"{FRAMES_FILE} ({arm})": len(video) for arm, video in frames.items()}
    wrong = [f"{name} has {n}" for name, n in counts.items() if n != report.frames]
    if wrong:
        return f"the report has {report.frames} frames but {', '.join(wrong)}"
    return None


@dataclass(frozen=True)
class FinishedJob:
    """A job folder that finished: its item, seed and folder; frames load on demand."""

    folder: Path
    item: BatchItem
    seed: int

    def frames(self) -> dict[str, np.ndarray]:
        """The exact frames by arm."""
        return read_frames(self.folder)


def finished_jobs(out: Path, names: list[str]) -> Iterator[FinishedJob | tuple[str, str]]:
    """For each job folder name in order: its FinishedJob, or (name, why it cannot be read)."""
    for name in names:
        folder = out / name
        if not (folder / FRAMES_FILE).is_file():
            yield name, "not finished"
            continue
        try:
            item, seed, _ = read_job_record(folder)
        except StarVidError as exc:
            yield name, str(exc)
            continue
        yield FinishedJob(folder, item, seed)
