"""The run's CPU thread choice (issue 18: a busy CPU must not make runs far slower)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from starvid.errors import StarVidError
from starvid.threads import SMALL_MODEL_PARAMS, choose_threads, torch_threads

ROOT = Path(__file__).resolve().parents[1]


def test_small_models_run_on_one_thread_whatever_the_cores():
    assert choose_threads(5_000_000, cores=16, busy=0.0) == 1
    assert choose_threads(SMALL_MODEL_PARAMS - 1, cores=2, busy=0.0) == 1


def test_large_models_take_the_cores_others_leave_free(monkeypatch):
    monkeypatch.delenv("STARVID_THREADS", raising=False)
    big = 1_400_000_000
    assert choose_threads(big, cores=16, busy=0.2) == 16
    assert choose_threads(big, cores=16, busy=5.6) == 10
    assert choose_threads(big, cores=2, busy=1.0) == 1
    assert choose_threads(big, cores=2, busy=7.0) == 1  # never fewer than one


def test_the_environment_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv("STARVID_THREADS", "3")
    assert choose_threads(5_000_000, cores=2, busy=0.0) == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("STARVID_THREADS", bad)
        with pytest.raises(StarVidError, match="STARVID_THREADS"):
            choose_threads(5_000_000)


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_openmp_threads_sleep_while_waiting_unless_the_user_says_otherwise():
    code = "import os, starvid; print(os.environ['OMP_WAIT_POLICY'])"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ACTIVE"


def test_a_run_on_the_shipped_model_uses_one_thread_and_restores(monkeypatch):
    from starvid.backbones import load_backbone
    from starvid.parsing import parse_prompt
    from starvid.pipeline import generate
    from starvid.planning import heuristic_plan
    from starvid.settings import make_settings

    monkeypatch.delenv("STARVID_THREADS", raising=False)
    bb = load_backbone("shapes", device="cpu")
    seen = []
    parsed = parse_prompt("a red circle moving left")
    s = make_settings({"steps": 2}).resolve(bb)
    plan = heuristic_plan(parsed, frames=s.frames)
    torch.set_num_threads(2)
    try:
        generate(bb, parsed, plan, s, progress=lambda p: seen.append(torch.get_num_threads()))
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
