"""The run contract: one typed request to a finished run folder, with typed events and cancel,
under the CLI, batch and the Studio's worker alike."""

from __future__ import annotations

import threading

import pytest

import starvid.batch.runner
import starvid.run
from starvid.parsing import parse_prompt
from starvid.pipeline import Cancelled, StepProgress
from starvid.planning import heuristic_plan
from starvid.run import GenerationRequest, RunEvent, run_generation
from starvid.settings import GenerationSettings

PROMPT = "a dog running"
SMALL = GenerationSettings(steps=2, frames=2)


@pytest.fixture(scope="module")
def parsed():
    return parse_prompt(PROMPT)


def test_a_request_becomes_a_finished_run_folder_with_typed_events(parsed, tmp_path):
    events: list[RunEvent] = []
    request = GenerationRequest(parsed, "tiny", SMALL, baseline=True, device="cpu")
    result = run_generation(request, tmp_path / "run", events.append)
    phases = [e.phase for e in events if e.step is None]
    assert phases == ["loading", "running", "saving", "done"]
    steps = [e.step for e in events if e.step is not None]
    assert all(isinstance(s, StepProgress) for s in steps)
    assert [(s.run, s.step) for s in steps] == [
        ("guided", 1),
        ("guided", 2),
        ("baseline", 1),
        ("baseline", 2),
    ]
    assert set(result.files) >= {"guided", "baseline", "side_by_side", "report", "maps", "plan"}
    assert all(p.is_file() and p.parent == tmp_path / "run" for p in result.files.values())


def test_cancel_stops_the_run_and_writes_nothing(parsed, tmp_path):
    cancel = threading.Event()

    def progress(event: RunEvent) -> None:
        if event.step is not None:
            cancel.set()  # after the first step

    request = GenerationRequest(parsed, "tiny", SMALL, device="cpu")
    with pytest.raises(Cancelled):
        run_generation(request, tmp_path / "run", progress, cancel)
    assert list((tmp_path / "run").iterdir()) == []


def test_the_cli_batch_and_the_studio_worker_go_through_it(parsed, tmp_path, monkeypatch):
    from starvid.cli import main
    from starvid.ui.jobs import stream_generation

    calls = []

    def counted(request, folder, *args, **kwargs):
        calls.append(type(request).__name__)
        return run_generation(request, folder, *args, **kwargs)

    monkeypatch.setattr(starvid.run, "run_generation", counted)
    monkeypatch.setattr(starvid.batch.runner, "run_generation", counted)
    flags = ["--backbone", "tiny", "--steps", "1", "--frames", "2"]
    assert main(["generate", PROMPT, "--out", str(tmp_path / "cli"), *flags]) == 0
    (tmp_path / "prompts.txt").write_text(PROMPT + "\n")
    batch = ["batch", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "batch")]
    assert main([*batch, "--device", "cpu", *flags]) == 0
    plan = heuristic_plan(parsed, frames=2)  # the Studio sends the edited plan
    settings = GenerationSettings(steps=1, frames=2)
    events = list(stream_generation(GenerationRequest(parsed, "tiny", settings, plan), "t:9"))
    done = events[-1]
    assert done.error is None and done.result.files["report"].is_file()
    assert calls == ["GenerationRequest"] * 3
