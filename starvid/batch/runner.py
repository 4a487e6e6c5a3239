"""Run a batch: every item at every seed through the run layer, resumable, split between processes.

``run_batch`` checks everything a run needs before generating anything (the output folder, the
parses, plan files, the settings against the backbone, the folder's earlier config), so bad
input stops every process at once with one line. It then reads every job folder back
(``layout.folder_problem``): finished jobs are skipped, broken or missing ones are (re)done.
Under ``accelerate launch`` each process takes its share of the jobs still to do with
accelerate's ``PartialState().split_between_processes`` and loads the backbone once; a plain
``python -m starvid batch`` is one process. A job that fails (a planner error, a NaN run, out of
GPU memory) is recorded as failed and the batch goes on.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch

from starvid import DEFAULT_BACKBONE
from starvid.backbones import Backbone
from starvid.batch import layout
from starvid.batch.items import BatchItem, Job, make_jobs
from starvid.batch.manifest import (
    MANIFEST_VERSION,
    check_same_config,
    code_version,
    now,
    read_manifest,
    write_manifest,
)
from starvid.errors import StarVidError
from starvid.parsing import ParsedPrompt, parse_stream
from starvid.plan import Plan, read_plan_file
from starvid.run import GenerationRequest, check_output_folder, run_generation
from starvid.settings import GenerationSettings
from starvid.targets import check_plan_matches

# How long a finished process waits for the others at the end (the split is static, so a
# process with slower jobs may finish hours later); torch.distributed's default is 30 minutes.
PROCESS_GROUP_TIMEOUT = timedelta(hours=72)


@dataclass(frozen=True)
class BatchConfig:
    """How every job of a batch runs: backbone, settings (their seed is the jobs'), baseline,
    planner or a folder of plan files (``ITEM-sSEED.json`` or ``ITEM.json``), device."""

    backbone: str = DEFAULT_BACKBONE
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    baseline: bool = False
    planner: str = "heuristic"
    plans: Path | None = None
    device: str | None = None


@dataclass
class BatchSummary:
    """What a batch run did: one record per job in order, and the processes that ran it."""

    out: Path
    jobs: list[dict]
    processes: int
    is_main_process: bool
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Jobs with this status ("generated", "skipped", "failed")."""
        return sum(1 for job in self.jobs if job["status"] == status)

    @property
    def failed(self) -> list[dict]:
        """The records of the jobs that failed."""
        return [job for job in self.jobs if job["status"] == "failed"]


def parse_items(items: Sequence[BatchItem]) -> dict[str, ParsedPrompt]:
    """Every item's parse (one batched spaCy pipe); the first prompt that fails is an error."""
    parsed = {}
    for number, (item, result) in enumerate(
        zip(items, parse_stream(i.prompt for i in items), strict=True), start=1
    ):
        if isinstance(result, StarVidError):
            raise StarVidError(f"item {number} ({item.id}): {result}")
        parsed[item.id] = result
    return parsed


def read_plans(folder: Path, jobs: Sequence[Job], parsed: dict[str, ParsedPrompt]) -> dict:
    """Each job's plan from ``folder`` (``ITEM-sSEED.json``, else ``ITEM.json``), validated and
    checked against the item's parse; a job without one is an error."""
    if not folder.is_dir():
        raise StarVidError(f"plan folder not found: {folder}")
    plans: dict[str, Plan] = {}
    for job in jobs:
        path = next(
            (
                p
                for p in (folder / f"{job.name}.json", folder / f"{job.item.id}.json")
                if p.is_file()
            ),
            None,
        )
        if path is None:
            raise StarVidError(
                f"{folder} has no plan for {job.name} ({job.name}.json or {job.item.id}.json)"
            )
        try:
            plans[job.name] = read_plan_file(path)
            check_plan_matches(parsed[job.item.id], plans[job.name])
        except StarVidError as exc:
            raise StarVidError(f"{path}: {exc}") from exc
    return plans


def process_state(device: str | None):
    """accelerate's state of this process (one process unless launched by ``accelerate``).

    On a machine without CUDA (or with ``--device cpu``) the processes talk over gloo, as
    accelerate's MULTI_CPU mode: a PartialState without ``cpu=True`` would make every process
    of ``accelerate launch`` think it is alone and run every job.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = (
        not torch.cuda.is_available()
        or (device or "").startswith("cpu")
        or parse_flag_from_env("ACCELERATE_USE_CPU")
    )
    return PartialState(cpu=cpu, timeout=PROCESS_GROUP_TIMEOUT)


def launch_warnings(state) -> list[str]:
    """accelerate's simple launcher starts one process for ``--cpu --num_processes N`` (several
    CPU processes need mpirun): say so rather than run N times slower than asked."""
    asked_several = os.environ.get("MASTER_ADDR") and os.environ.get("ACCELERATE_USE_CPU") == "True"
    if asked_several and state.num_processes == 1:
        return [
            "accelerate launch --cpu started one process: for several processes on one machine "
            "use accelerate launch --multi_gpu --num_processes N (torchrun; CPU processes talk "
            "over gloo), or --cpu with --mpirun_hostfile"
        ]
    return []


def _job_record(job: Job, status: str, **extra) -> dict:
    return {
        "folder": job.name,
        "id": job.item.id,
        "prompt": job.item.prompt,
        "seed": job.seed,
        "status": status,
        **extra,
    }


def _run_job(
    job: Job,
    parsed: ParsedPrompt,
    plan: Plan | None,
    device: str,
    config: BatchConfig,
    out: Path,
    state,
) -> dict:
    """Generate one job and write its folder; a failure is recorded, not raised."""
    where = {
        "process": state.process_index,
        "processes": state.num_processes,
        "host": socket.gethostname(),
    }
    started, t0 = now(), time.perf_counter()
    tmp = layout.new_job_folder(job, out)
    try:
        settings = config.settings.model_copy(update={"seed": job.seed})
        request = GenerationRequest(
            parsed, config.backbone, settings, plan, config.baseline, config.planner, device
        )
        result = run_generation(request, tmp)
        times = {
            "started": started,
            "finished": now(),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        layout.write_job(result, job, out, where | times, written=tmp)
    except (StarVidError, torch.OutOfMemoryError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, torch.OutOfMemoryError):
            torch.cuda.empty_cache()
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _job_record(job, "failed", error=error, **where)
    return _job_record(job, "generated", **where, **times)


def _device(config: BatchConfig, state) -> str:
    """This process's device: its own GPU under a multi-GPU launch."""
    device = config.device
    if device is None or (device == "cuda" and state.device.type == "cuda"):
        device = state.device  # cuda:LOCAL_RANK
    return str(device)


def _load_backbone(config: BatchConfig, state) -> Backbone:
    """The backbone on this process's device (loaded once: the jobs find it in the cache)."""
    from starvid.backbones import load_backbone

    return load_backbone(config.backbone, device=_device(config, state))


def _start_manifest(config: BatchConfig, run_config: dict, jobs, problems, previous, state, **run):
    """The manifest of a run that starts: every job skipped (finished) or pending, with why."""
    return {
        "version": MANIFEST_VERSION,
        "status": "running",
        "config": run_config,
        **run,
        "plans": str(config.plans) if config.plans is not None else None,
        "code": code_version(),
        "processes": state.num_processes,
        "started": now(),
        "jobs": [
            _job_record(j, "pending", reason=problems[j.name])
            if problems[j.name]
            else _job_record(j, "skipped")
            for j in jobs
        ],
        "runs": (previous or {}).get("runs", []),
    }


def _finish_manifest(manifest: dict, records: list[dict]) -> dict:
    """The manifest once every process is done: each job's record, counts, this run in runs."""
    by_name = {r["folder"]: r for r in records}
    jobs = [r | by_name.get(r["folder"], {}) for r in manifest["jobs"]]
    counts = {s: sum(r["status"] == s for r in jobs) for s in ("generated", "skipped", "failed")}
    finished = now()
    this_run = {k: manifest[k] for k in ("started", "code", "processes")}
    return manifest | {
        "status": "finished",
        "finished": finished,
        "counts": counts,
        "jobs": jobs,
        "runs": manifest["runs"] + [this_run | {"finished": finished, "counts": counts}],
    }


def run_batch(
    items: Sequence[BatchItem],
    seeds: Sequence[int],
    out: str | Path,
    config: BatchConfig,
    source: str = "",
) -> BatchSummary:
    """Run every item at every seed into ``out`` (one folder per job, see ``layout``).

    Everything is checked before the first generation; finished jobs are skipped, broken ones
    redone. Returns every job's record (in every process).
    """
    from accelerate.utils import gather_object
    from tqdm import tqdm

    out = check_output_folder(out)
    if not seeds:
        raise StarVidError("a batch needs at least one seed")
    jobs = make_jobs(items, list(seeds))
    parsed = parse_items(items)
    plans = read_plans(config.plans, jobs, parsed) if config.plans is not None else {}
    state = process_state(config.device)
    backbone = _load_backbone(config, state)
    run_config = {
        "backbone": config.backbone,
        "baseline": config.baseline,
        "planner": "plan files" if config.plans is not None else config.planner,
        "settings": config.settings.resolve(backbone).model_dump(mode="json", exclude={"seed"}),
    }
    previous = read_manifest(out)
    check_same_config(previous, run_config, out)
    problems = {
        job.name: layout.folder_problem(out / job.name, job, config.baseline) for job in jobs
    }
    manifest = _start_manifest(
        config, run_config, jobs, problems, previous, state, inputs=source, seeds=list(seeds)
    )
    if state.is_main_process:
        layout.remove_temporary(out)
        write_manifest(out, manifest)
    state.wait_for_everyone()  # nothing is written into job folders before every check is done
    records = []
    todo = [job for job in jobs if problems[job.name] is not None]
    with state.split_between_processes(todo) as mine:
        desc, position = f"batch [{state.process_index}]", state.local_process_index
        for job in tqdm(mine, desc=desc, unit="job", disable=None, position=position):
            plan = plans.get(job.name)
            device = _device(config, state)
            records.append(_run_job(job, parsed[job.item.id], plan, device, config, out, state))
    manifest = _finish_manifest(manifest, gather_object(records))
    if state.is_main_process:
        write_manifest(out, manifest)
    warnings = launch_warnings(state)
    return BatchSummary(out, manifest["jobs"], state.num_processes, state.is_main_process, warnings)
