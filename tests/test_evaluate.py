"""``python -m starvid evaluate`` over batch folders: the shapes scorer gives the shapes
benchmark's table (checked against the benchmark's in-memory computation), the detector scorer
runs end to end on a tiny random-weight OWL-ViT, and bad input stops in one line."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_detectors import owl_folder

from starvid.batch import read_frames, read_manifest
from starvid.batch.items import prompt_id
from starvid.cli import main
from starvid.evaluation import stats

SEEDS = (0, 1)


def _bench():
    """benchmarks/shapes_eval.py as a module (as tests/test_shapes.py loads it)."""
    bench_dir = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    return importlib.import_module("shapes_eval")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shapes_batch(tmp_path_factory):
    """Two held-out captions x two seeds as a plain prompt file, with the benchmark's oracle
    plans as plan files, run with a baseline in 3 steps; returns (folder, captions' groups)."""
    from starvid.shapes.world import WorldConfig, caption_of, parsed_caption, sample_eval_groups

    bench = _bench()
    tmp = tmp_path_factory.mktemp("shapes")
    cfg = WorldConfig()
    groups_list = sample_eval_groups(2, seed=0, cfg=cfg)
    (tmp / "prompts.txt").write_text("".join(caption_of(g) + "\n" for g in groups_list))
    (tmp / "plans").mkdir()
    for groups in groups_list:
        for seed in SEEDS:
            plan = bench.world_plan(groups, parsed_caption(groups), seed % 3, cfg)
            name = f"{prompt_id(caption_of(groups))}-s{seed}.json"
            (tmp / "plans" / name).write_text(json.dumps(plan))
    argv = ["batch", str(tmp / "prompts.txt"), "--out", str(tmp / "out"), "--baseline"]
    argv += ["--plans", str(tmp / "plans"), "--seeds", str(len(SEEDS)), "--steps", "3"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return tmp / "out", groups_list


def as_saved(maps: dict) -> dict:
    """The maps as ``maps.npz`` keeps them (float16), read back as the evaluation reads them."""
    return {k: np.asarray(v).astype(np.float16) for k, v in maps.items()}


def _reference_rows(groups_list) -> list[dict]:
    """The shapes benchmark's rows computed in memory, as shapes_eval.py did before the batch:
    the exact parse, the oracle plan, one run with its baseline, score_video on the frames."""
    from starvid.backbones import load_backbone
    from starvid.guidance import verb_distances
    from starvid.plan import validate_plan
    from starvid.run import execute, prepare_run
    from starvid.settings import make_settings
    from starvid.shapes.score import CATEGORIES, score_video, seen_motion
    from starvid.shapes.world import WorldConfig, caption_of, parsed_caption
    from starvid.targets import label_roles

    bench, cfg = _bench(), WorldConfig()
    bb = load_backbone("shapes", device="cpu")
    rows = []
    for groups in groups_list:
        for seed in SEEDS:
            parsed = parsed_caption(groups)
            plan = validate_plan(bench.world_plan(groups, parsed, seed % 3, cfg))
            settings = make_settings({"steps": 3, "seed": seed})
            res = execute(prepare_run(parsed, bb, "shapes", settings, plan, baseline=True), bb)
            sb, sg = (score_video(v.frames, groups, cfg) for v in (res.baseline, res.guided))
            rows.append(
                {
                    "caption": caption_of(groups),
                    "seed": seed,
                    "baseline": {c: float(getattr(sb, c)) for c in CATEGORIES},
                    "starvid": {c: float(getattr(sg, c)) for c in CATEGORIES},
                    "groups": [
                        {"count": b.count, "baseline": b.count_ok and b.size_ok}
                        | {"starvid": g.count_ok and g.size_ok, "motion": b.motion}
                        | {"seen": {"baseline": seen_motion(b), "starvid": seen_motion(g)}}
                        for b, g in zip(sb.groups, sg.groups, strict=True)
                    ],
                    "extra": {"baseline": sb.extra_objects > 0, "starvid": sg.extra_objects > 0},
                    "leak": {"baseline": sb.motion_leak, "starvid": sg.motion_leak},
                    "verb_kl": {
                        arm: verb_distances(as_saved(r.maps_window), label_roles(parsed))
                        for arm, r in (("baseline", res.baseline), ("starvid", res.guided))
                    },
                }
            )
    return rows


def test_shapes_scorer_gives_the_benchmarks_table(shapes_batch, capsys, tmp_path):
    out, groups_list = shapes_batch
    code, stdout, _ = _run(capsys, "evaluate", str(out), "--scorer", "shapes", "--json")
    assert code == 0
    result = json.loads(stdout)
    reference = _reference_rows(groups_list)
    # the same table, value for value (json.dumps compares the interval bounds exactly)
    assert json.dumps(result["tables"]) == json.dumps({"shapes": stats.rate_table(reference)})
    assert result["n_videos"] == 4 and result["unfinished"] == []
    # the rows written next to the batch are the benchmark's rows: the same printed table,
    # diagnosis included
    rows = [json.loads(line) for line in (out / "evaluation.jsonl").read_text().splitlines()]
    exact = [k for k in reference[0] if k != "verb_kl"]
    assert [{k: r[k] for k in exact} for r in rows] == [{k: r[k] for k in exact} for r in reference]
    # the verb maps' KL read back from maps.npz is the in-memory maps' as saved (float16: the
    # KL weighs near-zero cells, which float16 rounds, by up to 8 % on the shipped model)
    for r, ref in zip(rows, reference, strict=True):
        for arm in ("baseline", "starvid"):
            assert r["verb_kl"][arm] == pytest.approx(ref["verb_kl"][arm], rel=1e-6)
    bench = _bench()
    printed = []
    for r in (reference, rows):
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            bench.print_table("shapes", bench.rate_table(r))
        printed.append(text.getvalue())
    assert printed[0] == printed[1]

    code, stdout, _ = _run(
        capsys, "evaluate", str(out), "--scorer", "shapes", "--plot", str(tmp_path / "r.png")
    )
    assert code == 0
    markdown = stats.markdown_table({"shapes": stats.rate_table(reference)})
    assert stdout.startswith(markdown + "\n") and f"wrote {out / 'evaluation.md'}" in stdout
    written = (out / "evaluation.md").read_text()
    assert markdown in written and "Scorer: shapes; 4 videos in each arm" in written
    assert Image.open(tmp_path / "r.png").size[0] >= 360


def test_an_unfinished_batch_is_scored_on_its_finished_jobs(shapes_batch, tmp_path, capsys):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(shapes_batch[0], out)
    names = [job["folder"] for job in read_manifest(out)["jobs"]]
    (out / names[1] / "frames.npz").unlink()  # as a job still running or interrupted
    code, stdout, err = _run(capsys, "evaluate", str(out), "--scorer", "shapes", "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["n_videos"] == 3
    assert result["unfinished"] == [{"folder": names[1], "reason": "not finished"}]
    assert err == ""  # --json: the JSON says it
    assert f"- {names[1]}: not finished" in (out / "evaluation.md").read_text()
    code, _, err = _run(capsys, "evaluate", str(out), "--scorer", "shapes")
    assert code == 0
    assert err == f"warning: 1 of 4 jobs not scored (first: {names[1]}, not finished); " + (
        "evaluation.md lists them\n"
    )


def test_detector_scorer_end_to_end_on_a_tiny_owlvit(tmp_path, capsys):
    """Two LVD numeracy items on the tiny backbone, scored by a random-weight OWL-ViT saved to a
    folder: the plumbing (frames read, per-task table, markdown, PNG), not the model's skill."""
    from starvid.evaluation.detector import load_detector, score_video
    from starvid.evaluation.facts import read_items

    suite = tmp_path / "lvd.jsonl"
    assert main(["suite", "lvd-numeracy", "--n", "2", "--out", str(suite)]) == 0
    out = tmp_path / "out"
    argv = ["batch", str(suite), "--out", str(out), "--backbone", "tiny", "--baseline"]
    assert main([*argv, "--steps", "2"]) == 0
    capsys.readouterr()
    detector = owl_folder(tmp_path, v2=False)
    png = tmp_path / "plot.png"
    code, stdout, err = _run(
        capsys, "evaluate", str(out), "--scorer", "detector", "--detector", str(detector),
        "--plot", str(png), "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    assert result["scorer"] == "detector" and result["detector"] == str(detector)
    table = result["tables"]["numeracy"]
    assert table["n_videos"] == 2 and set(table["starvid"]) == {"numeracy"}
    rows = [json.loads(line) for line in (out / "evaluation.jsonl").read_text().splitlines()]
    items = read_items(suite)
    assert [r["id"] for r in rows] == [i.id for i in items]
    model = load_detector(str(detector))
    for row, item in zip(rows, items, strict=True):
        assert row["task"] == "numeracy" and row["prompt"] == item.prompt
        frames = read_frames(out / f"{item.id}-s0")
        for arm, key in (("starvid", "guided"), ("baseline", "baseline")):
            direct = score_video(frames[key], item, model)
            assert row[arm] == direct.values() and row[arm]["numeracy"] in (0.0, 1.0)
            assert row["scores"][arm]["frames"] == [0, 1, 3, 4, 6, 7]  # LVD: 6 of 8 frames
            assert row["scores"][arm]["categories"] == direct.model_dump(mode="json")["categories"]
    rates = [np.mean([r[arm]["numeracy"] for r in rows]) for arm in ("baseline", "starvid")]
    assert [table["baseline"]["numeracy"], table["starvid"]["numeracy"]] == rates
    written = (out / "evaluation.md").read_text()
    assert "| numeracy | numeracy | 2 |" in written and str(detector) in written
    image = Image.open(png)
    colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert image.size[0] >= 360 and len(colours) > 3  # axes, bars, text drawn


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_bad_input_is_one_line(shapes_batch, tmp_path, capsys):
    out, _ = shapes_batch
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["evaluate", str(empty), "--scorer", "shapes"], "no batch in"),
        (["evaluate", str(tmp_path / "none"), "--scorer", "shapes"], "no batch in"),
        (["evaluate", str(out), "--scorer", "shapes", "--plot", "x.jpg"], "--plot writes a PNG"),
        (["evaluate", str(out), "--scorer", "shapes", "--detector", "owlvit"], "--detector goes"),
        (["evaluate", str(out), "--scorer", "vlm"], "argument --scorer: invalid choice"),
        (["evaluate", str(out), "--scorer", "detector"], "the detector scorer needs suite items"),
        (["suite", "lvd", "--n", "0"], "at least one prompt"),
        (["suite", "lvd", "--seed", "7"], "seed must be 0 to 4"),
        (["suite", "lvd", "--out", str(tmp_path)], "--out names a file"),
    ]
    for argv, message in cases:
        code, stdout, err = _run(capsys, *argv)
        assert (code, stdout) == (2, ""), argv
        assert message in _one_error_line(err), argv
    # a detector that is neither here nor reachable: one line naming it
    suite = tmp_path / "s.jsonl"
    assert main(["suite", "lvd-numeracy", "--n", "1", "--out", str(suite)]) == 0
    for name, baseline, scorer, message in [
        ("suite", ["--baseline"], ["detector", "--detector", "nobody/none"], "nobody/none is not"),
        ("plain", [], ["shapes"], "run the batch with --baseline"),
        ("dogs", ["--baseline"], ["shapes"], "not a shapes-world caption"),
    ]:
        prompts = suite if name == "suite" else tmp_path / f"{name}.txt"
        if name != "suite":
            prompts.write_text("a red circle jumping\n" if name == "plain" else "a dog running\n")
        folder = tmp_path / name
        argv = ["batch", str(prompts), "--out", str(folder), "--steps", "2", *baseline]
        assert main([*argv, "--backbone", "tiny" if name != "plain" else "shapes"]) == 0
        capsys.readouterr()
        code, stdout, err = _run(capsys, "evaluate", str(folder), "--scorer", *scorer)
        assert (code, stdout) == (2, "")
        assert message in _one_error_line(err)
    assert read_manifest(tmp_path / "dogs")["status"] == "finished"
