"""The cost benchmark's recipes that run where the tests cannot look later (a GPU box)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from starvid.parsing import ParsedPrompt, parse_prompt

ROOT = Path(__file__).resolve().parents[1]
COST = ROOT / "benchmarks" / "guidance_cost.py"
PARSED = ROOT / "benchmarks" / "data" / "cost_prompt_parse.json"


def _run(*args: str) -> list[dict]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(COST), *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_saved_parse_of_the_cost_prompt_is_current():
    """GPU boxes lack spaCy: the benchmark reads this saved parse there."""
    saved = json.loads(PARSED.read_text(encoding="utf-8"))
    assert ParsedPrompt.from_details(saved) == parse_prompt(saved["prompt"])


def test_guided_modes_from_a_saved_parse():
    rows = _run(
        "--parsed", str(PARSED), "--modes", "guided", "--steps", "2", "--repeats", "0",
        "--threads", "1", "--no-isolate",
    )  # fmt: skip
    assert [r["setting"] for r in rows] == ["default", "checkpointing"]
    for r in rows:
        assert r["time_ratio"] > 0 and r["memory_ratio"] > 0 and r["backbone"] == "tiny"
    assert rows[1]["settings"]["checkpointing"] and not rows[0]["settings"]["checkpointing"]


def test_estimate_sizes_a_full_size_model_on_meta():
    rows = _run("--backbone", "zeroscope", "--estimate")
    off, on = rows
    assert (off["frames"], off["width"], off["height"]) == (24, 576, 320)
    assert on["checkpointing"] and on["default"] and not off["default"]
    assert on["activations_gib"] < 0.2 * off["activations_gib"]
    assert 2.0 < on["unet_weights_gib"] < 3.5  # 1.4 B parameters in bf16
