"""``python -m starvid batch``: one folder per prompt and seed, reruns that redo only broken jobs,
two processes under ``accelerate launch`` sharing the jobs, and bad input stopped in one line.

Runs on the shipped shapes backbone with 2 denoising steps (a job takes a fraction of a second).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from starvid.batch import read_batch_items, read_frames
from starvid.batch.items import prompt_id
from starvid.batch.layout import job_files
from starvid.cli import main
from starvid.export import read_video

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "two red circles moving left and a blue square jumping",
    "a green triangle moving up and two yellow squares staying still",
]
FAST = ["--steps", "2"]


def _batch(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["batch", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("*/*")}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture()
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n\n")
    return path


def test_batch_writes_each_job_once_and_redoes_broken_ones(prompts, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(prompts), "--out", str(out), "--seeds", "2", "--baseline", *FAST]
    code, stdout, _ = _batch(capsys, *args)
    assert code == 0 and "4 jobs: 4 generated, 0 skipped, 0 failed" in stdout
    names = [f"{prompt_id(p)}-s{s}" for p in PROMPTS for s in (0, 1)]
    assert names[0] == "two-red-circles-moving-left-and-a-blue-d18cc7bf-s0"  # readable, stable
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "manifest.json"])
    for name in names:
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(job_files(True))
    first = out / names[0]
    report = json.loads((first / "report.json").read_text())
    assert (report["prompt"], report["seed"], report["settings"]["steps"]) == (PROMPTS[0], 0, 2)
    record = json.loads((first / "item.json").read_text())
    assert record["item"]["prompt"] == PROMPTS[0] and record["seed"] == 0
    assert (record["process"], record["processes"]) == (0, 1)
    # frames.npz holds the videos exactly; the MP4 is the same video, upscaled and lossy
    frames = read_frames(first)
    assert set(frames) == {"guided", "baseline"} and frames["guided"].shape == (8, 32, 32, 3)
    mp4 = read_video(first / "guided.mp4")[:, 4::8, 4::8]  # 256 px, 8x nearest: block centres
    assert np.abs(mp4.astype(int) - frames["guided"]).mean() < 6
    assert not np.array_equal(frames["guided"], frames["baseline"])
    manifest = _manifest(out)
    assert manifest["status"] == "finished" and manifest["seeds"] == [0, 1]
    assert manifest["config"]["backbone"] == "shapes" and manifest["config"]["baseline"] is True
    settings = manifest["config"]["settings"]
    assert settings["steps"] == 2 and settings["record_layers"] == "down_blocks.0"
    assert "seed" not in settings  # the jobs' own
    assert manifest["code"]["starvid"] and manifest["code"]["torch"]
    assert [j["folder"] for j in manifest["jobs"]] == names
    assert {j["status"] for j in manifest["jobs"]} == {"generated"}

    # a rerun writes nothing
    before = _mtimes(out)
    code, stdout, _ = _batch(capsys, *args)
    assert code == 0 and "4 jobs: 0 generated, 4 skipped, 0 failed" in stdout
    assert _mtimes(out) == before

    # a truncated report, a deleted video, an interrupted job's temporary folder: the two broken
    # jobs are redone (the same videos: same seed), the others and their files left alone
    kept = frames
    (first / "report.json").write_text((first / "report.json").read_text()[:100])
    (out / names[3] / "guided.mp4").unlink()
    (out / ".tmp-leftover").mkdir()
    code, stdout, _ = _batch(capsys, *args)
    assert code == 0 and "4 jobs: 2 generated, 2 skipped, 0 failed" in stdout
    after = _mtimes(out)
    for name in names[1:3]:
        assert {k: v for k, v in after.items() if k.startswith(name)} == {
            k: v for k, v in before.items() if k.startswith(name)
        }
    assert after[f"{names[0]}/maps.npz"] != before[f"{names[0]}/maps.npz"]
    assert not (out / ".tmp-leftover").exists()
    redone = read_frames(first)
    assert all(np.array_equal(redone[arm], kept[arm]) for arm in kept)
    jobs = {j["folder"]: j for j in _manifest(out)["jobs"]}
    assert jobs[names[0]]["status"] == "generated" and "not JSON" in jobs[names[0]]["reason"]
    assert jobs[names[3]]["reason"] == "guided.mp4 missing"
    assert jobs[names[1]]["status"] == "skipped"
    assert len(_manifest(out)["runs"]) == 3

    # other settings never mix into the folder
    code, _, err = _batch(capsys, *args[:-1], "3")
    assert "other settings (steps 2 -> 3): use another --out" in _one_error_line(err)
    assert code == 2

    # a folder from before a setting existed resumes when the setting is at its default, and
    # only then (steps is not at its default here)
    older = _manifest(out)
    for key in ("plan_kind", "syntax_form", "steps"):
        del older["config"]["settings"][key]
    (out / "manifest.json").write_text(json.dumps(older))
    code, _, err = _batch(capsys, *args)
    assert "other settings (steps None -> 2): use another --out" in _one_error_line(err)
    older["config"]["settings"]["steps"] = 2
    (out / "manifest.json").write_text(json.dumps(older))
    code, stdout, _ = _batch(capsys, *args)
    assert code == 0 and "4 jobs: 0 generated, 4 skipped, 0 failed" in stdout


def test_a_failed_job_is_recorded_and_the_batch_goes_on(tmp_path, capsys):
    prompts = tmp_path / "one.txt"
    prompts.write_text(PROMPTS[0] + "\n")
    out = tmp_path / "out"
    out.mkdir()
    blocked = f"{prompt_id(PROMPTS[0])}-s0"
    (out / blocked).write_text("a file where the job's folder goes")
    args = [str(prompts), "--out", str(out), "--seeds", "2", *FAST]
    code, stdout, err = _batch(capsys, *args)
    assert code == 1 and "2 jobs: 1 generated, 0 skipped, 1 failed" in stdout
    assert err.startswith(f"error: {blocked}: cannot write") and err.count("\n") == 1
    jobs = _manifest(out)["jobs"]
    assert [j["status"] for j in jobs] == ["failed", "generated"]
    assert jobs[0]["error"] in err and not list(out.glob(".tmp-*"))
    (out / blocked).unlink()
    code, stdout, _ = _batch(capsys, *args)  # the rerun retries it
    assert code == 0 and "2 jobs: 1 generated, 1 skipped, 0 failed" in stdout


def test_suite_items_keep_their_ids_and_facts(tmp_path, capsys):
    suite = tmp_path / "shapes.jsonl"
    assert main(["suite", "shapes", "--n", "2", "--seed", "1", "--out", str(suite)]) == 0
    capsys.readouterr()
    items = read_batch_items(suite)
    assert [i.id for i in items] == [i.suite_item.id for i in items]
    assert all(i.id.startswith("shapes-") and i.suite_item.task == "shapes" for i in items)
    assert main(["suite", "shapes", "--n", "2", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed == suite.read_text()
    out = tmp_path / "out"
    code, stdout, _ = _batch(capsys, str(suite), "--out", str(out), *FAST)
    assert code == 0 and "2 jobs: 2 generated" in stdout
    record = json.loads((out / f"{items[1].id}-s0" / "item.json").read_text())
    assert record["item"]["suite_item"]["facts"] == json.loads(printed.splitlines()[1])["facts"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_share_the_jobs(prompts, tmp_path):
    """accelerate launch (torchrun, 2 CPU processes over gloo): each job runs once, in the
    process accelerate's split gives it; none is lost."""
    out = tmp_path / "out"
    prompts.write_text("\n".join([*PROMPTS, "a red square moving right"]) + "\n")
    launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port())]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launch, "-m", "starvid", "batch"]
    cmd += [str(prompts), "--out", str(out), "--seeds", "2", *FAST]
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("6 jobs by 2 processes: 6 generated, 0 skipped, 0 failed") == 1
    manifest = _manifest(out)
    assert manifest["processes"] == 2
    jobs = manifest["jobs"]
    assert len(jobs) == 6 and {j["status"] for j in jobs} == {"generated"}
    # split_between_processes: the first three jobs to process 0, the last three to process 1
    assert [j["process"] for j in jobs] == [0, 0, 0, 1, 1, 1]
    for job in jobs:  # the folder's own record agrees: written once, by that process
        record = json.loads((out / job["folder"] / "item.json").read_text())
        assert (record["process"], record["processes"]) == (job["process"], 2)
    assert len([p for p in out.iterdir() if p.is_dir()]) == 6


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing file", "cannot read"),
        ("empty file", "has no prompts"),
        ("out is a file", "the output folder is a file"),
        ("no seeds", "--seeds must be at least 1"),
        ("bad setting", "--steps: Input should be greater than or equal to 1"),
        ("bad choice", "argument --distance: invalid choice"),
        ("unknown backbone", "unknown backbone 'nope'"),
        ("unparseable prompt", "item 2 (running-fast-"),
        ("repeated prompt", "item 3: 'two-red-circles"),
        ("bad suite line", "line 1: id: String should have at least 1 character"),
        ("unsafe id", "cannot name a folder"),
        ("missing plan", "has no plan for two-red-circles"),
        ("plan of another prompt", "plan object 'dog-1' is a 'dog' but subject 0"),
        ("height", "height=36 must be a multiple of 8"),
    ],
)
def test_bad_input_is_one_line_and_generates_nothing(tmp_path, capsys, case, message):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    args = [str(prompts), "--out", str(out), *FAST]
    if case == "missing file":
        args[0] = str(tmp_path / "none.txt")
    elif case == "empty file":
        prompts.write_text("\n  \n")
    elif case == "out is a file":
        out.write_text("")
    elif case == "no seeds":
        args += ["--seeds", "0"]
    elif case == "bad setting":
        args += ["--steps", "0"]
    elif case == "bad choice":
        args += ["--distance", "l2"]
    elif case == "unknown backbone":
        args += ["--backbone", "nope"]
    elif case == "unparseable prompt":
        prompts.write_text(f"{PROMPTS[0]}\nrunning fast\n")
    elif case == "repeated prompt":
        prompts.write_text("\n".join([*PROMPTS, PROMPTS[0]]) + "\n")
    elif case in ("bad suite line", "unsafe id"):
        item = {"id": "" if case == "bad suite line" else "../up", "suite": "s", "task": "numeracy"}
        item |= {"prompt": "a dog", "facts": {"objects": [{"noun": "dog"}]}}
        args[0] = str(tmp_path / "s.jsonl")
        Path(args[0]).write_text(json.dumps(item) + "\n")
    elif case in ("missing plan", "plan of another prompt"):
        plans = tmp_path / "plans"
        plans.mkdir()
        args += ["--plans", str(plans)]
        if case == "plan of another prompt":
            box = [0.1, 0.1, 0.3, 0.3]
            plan = {"version": 1, "frames": 8, "objects": [{"id": "dog-1", "noun": "dog",
                    "subject": 0, "boxes": [box] * 8}]}  # fmt: skip
            for p in PROMPTS:
                (plans / f"{prompt_id(p)}.json").write_text(json.dumps(plan))
    elif case == "height":
        args += ["--height", "36"]
    code, stdout, err = _batch(capsys, *args)
    assert code == 2 and stdout == ""
    assert message in _one_error_line(err)
    if out.is_dir():
        assert [p.name for p in out.iterdir()] == []
