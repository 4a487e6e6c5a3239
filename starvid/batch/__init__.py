"""Batches: many prompts x seeds through the run layer, resumable and split between processes.

``items`` reads prompt and suite files into items and jobs, ``layout`` writes and checks a job's
folder, ``manifest`` records what ran, and ``runner`` runs a batch (``python -m starvid batch``).
"""

from starvid.batch.items import BatchItem, Job, make_jobs, read_batch_items, read_prompt_lines
from starvid.batch.layout import FinishedJob, finished_jobs, folder_problem, read_frames
from starvid.batch.manifest import job_names, read_manifest
from starvid.batch.runner import BatchConfig, BatchSummary, run_batch

__all__ = [
    "BatchConfig",
    "BatchItem",
    "BatchSummary",
    "FinishedJob",
    "Job",
    "finished_jobs",
    "folder_problem",
    "job_names",
    "make_jobs",
    "read_batch_items",
    "read_frames",
    "read_manifest",
    "read_prompt_lines",
    "run_batch",
]
