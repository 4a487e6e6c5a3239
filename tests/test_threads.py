"""The run's CPU thread choice (issue 18: a busy CPU must not make runs far slower)."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import torch

from starvid.errors import StarVidError
from starvid.threads import busy_cores, choose_threads, torch_threads


def test_threads_are_the_cores_others_leave_free(monkeypatch):
    monkeypatch.delenv("STARVID_THREADS", raising=False)
    assert choose_threads(cores=16, busy=0.2) == 16
    assert choose_threads(cores=16, busy=5.6) == 10
    assert choose_threads(cores=2, busy=0.05) == 2
    assert choose_threads(cores=2, busy=1.0) == 1
    assert choose_threads(cores=2, busy=7.0) == 1  # never fewer than one


def test_the_environment_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv("STARVID_THREADS", "3")
    assert choose_threads(cores=2, busy=0.0) == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("STARVID_THREADS", bad)
        with pytest.raises(StarVidError, match="STARVID_THREADS"):
            choose_threads()


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_busy_neighbour_is_seen_at_once():
    """The busy cores are read from /proc/stat over a tenth of a second, not from the 1-minute
    load average: a neighbour that has just started counts."""
    before = busy_cores(0.3)
    spinner = mp.Process(target=_spin, args=(3.0,), daemon=True)
    spinner.start()
    try:
        time.sleep(0.3)
        during = busy_cores(0.3)
    finally:
        spinner.join()
    assert during > before + 0.6, (before, during)


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_a_run_uses_the_chosen_threads_and_restores(monkeypatch):
    from starvid.backbones import load_backbone
    from starvid.parsing import parse_prompt
    from starvid.pipeline import generate
    from starvid.planning import heuristic_plan
    from starvid.settings import make_settings

    monkeypatch.setenv("STARVID_THREADS", "2")
    bb = load_backbone("shapes", device="cpu")
    seen = []
    parsed = parse_prompt("a red circle moving left")
    s = make_settings({"steps": 2}).resolve(bb)
    plan = heuristic_plan(parsed, frames=s.frames)
    torch.set_num_threads(1)
    generate(bb, parsed, plan, s, progress=lambda p: seen.append(torch.get_num_threads()))
    assert seen == [2, 2] and torch.get_num_threads() == 1
