"""LLM planner: the real llama.cpp runtime on the shipped SmolLM2 GGUF, and on a tiny random
GGUF written here with the ``gguf`` package for the grammar's edge cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from llama_cpp import LlamaGrammar

from starvid.boxes import iou
from starvid.errors import StarVidError
from starvid.parsing import parse_prompt
from starvid.planning import (
    MAX_INSTANCES,
    cap_counts,
    embedded_model_path,
    llm_available,
    llm_plan,
    load_model,
    resolve_model,
    run_llm,
    stated_options,
)
from starvid.planning.llm import object_specs
from starvid.planning.llm_prompts import (
    COLUMNS,
    ROWS,
    ObjectSpec,
    gbnf_literal,
    layout_grammar,
    motion_grammar,
)

ROOT = Path(__file__).resolve().parents[1]


def write_tiny_gguf(path: Path, seed: int = 0, n_embd: int = 32, n_head: int = 2) -> Path:
    """A llama-architecture GGUF with random weights and a character-level SPM vocabulary."""
    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581"]
    tokens += [chr(c) for c in range(33, 127)]
    types = [2, 3, 3] + [6] * 256 + [1] * 95  # unknown, control, byte, normal
    scores = [0.0] * 259 + [-1.0] * 95
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(2 * n_embd)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    ones = np.ones(n_embd, dtype=np.float32)
    w.add_tensor("token_embd.weight", rand(len(tokens), n_embd))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", rand(len(tokens), n_embd))
    w.add_tensor("blk.0.attn_norm.weight", ones)
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", rand(n_embd, n_embd))
    w.add_tensor("blk.0.ffn_norm.weight", ones)
    w.add_tensor("blk.0.ffn_gate.weight", rand(2 * n_embd, n_embd))
    w.add_tensor("blk.0.ffn_up.weight", rand(2 * n_embd, n_embd))
    w.add_tensor("blk.0.ffn_down.weight", rand(n_embd, 2 * n_embd))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-random.gguf"))


def _first_frame_ok(plan) -> bool:
    first = plan.boxes_array()[:, 0]
    return all(
        iou(first[i], first[j]) < 0.3 for i in range(len(first)) for j in range(i + 1, len(first))
    )


def _dx_dy(obj) -> tuple[float, float]:
    c = obj.center_path()
    return float(c[-1, 0] - c[0, 0]), float(c[-1, 1] - c[0, 1])


# -- models ------------------------------------------------------------------------------------


def test_embedded_model_is_found_without_network():
    path = embedded_model_path()
    assert path is not None and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    ref = resolve_model(None)
    assert (ref.label, ref.path) == ("smollm2-135m", str(path))
    assert llm_available()
    assert load_model() is load_model(str(path))  # loaded once, reused


def test_bad_models_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(StarVidError, match="model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip or a pickle, not GGUF")
    with pytest.raises(StarVidError, match="not a GGUF file"):
        resolve_model(str(fake))
    with pytest.raises(StarVidError, match="unknown model"):
        resolve_model("gpt-4")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(StarVidError, match="not in the local Hugging Face cache"):
        resolve_model("someone/some-model-GGUF:model-Q4_K_M.gguf")
    for model in (str(fake), "gpt-4", "someone/some-model-GGUF:model-Q4_K_M.gguf"):
        assert not llm_available(model)


def test_amx_crash_guard_in_a_subprocess():
    """Load and run the quantized model with weight repacking off, in its own process.

    On CPUs with AMX, llama.cpp's repacking of quantized weights segfaults (llama.cpp #20824);
    a crash here shows as a negative return code instead of killing the test runner.
    """
    code = (
        "import llama_cpp\n"
        "from starvid.planning import load_model\n"
        "llm = load_model()\n"
        "assert llm.model_params.use_extra_bufts is False\n"
        "out = llm.create_completion('Three cats', max_tokens=4, temperature=0)\n"
        "print('amx', llama_cpp.llama_cpp.ggml_cpu_has_amx_int8() if hasattr(llama_cpp.llama_cpp,"
        " 'ggml_cpu_has_amx_int8') else '?', 'tokens', out['usage']['completion_tokens'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"crashed with {proc.returncode}: {proc.stderr[-2000:]}"
    assert "tokens 4" in proc.stdout


# -- grammars ----------------------------------------------------------------------------------


def test_grammar_literals_are_escaped_and_fix_ids(tiny):
    assert gbnf_literal('a "b" \\ c\n') == '"a \\"b\\" \\\\ c\\n"'
    llm = load_model(tiny)
    specs = [
        ObjectSpec(id='odd"id\\1', noun="odd", subject=0, verbs=["say"]),
        ObjectSpec(id="cat-2", noun="cat", subject=0, verbs=[], columns=("right",)),
    ]
    text = llm.create_completion(
        "x",
        max_tokens=60,
        temperature=0,
        grammar=LlamaGrammar.from_string(layout_grammar(specs, "coarse"), verbose=False),
    )
    lines = text["choices"][0]["text"].splitlines()
    assert lines[0].startswith('odd"id\\1: ') and lines[1].startswith("cat-2: right ")
    raw = layout_grammar(specs, "raw") + "\n" + motion_grammar(specs, "raw", ["1 2 3 4"] * 2)
    assert "pct ::=" in raw


@pytest.mark.parametrize("mode", ["coarse", "raw"])
def test_random_model_under_the_grammar_always_parses(tiny, mode):
    """A random model writes anything the grammar allows; repair must always make a Plan."""
    parsed = parse_prompt("three cats walking to the left and a dog jumping on the right")
    repaired = 0
    for seed in range(6):
        run = run_llm(parsed, frames=12, seed=seed, model=tiny, mode=mode, timeout_s=60)
        assert run.failure is None, run.failure
        plan = run.plan
        assert [o.id for o in plan.objects] == ["cat-1", "cat-2", "cat-3", "dog-1"]
        assert plan.frames == 12 and all(len(o.boxes) == 12 for o in plan.objects)
        assert _first_frame_ok(plan)
        assert all(_dx_dy(o)[0] < 0 for o in plan.objects if o.noun == "cat")
        repaired += not run.valid_before_repair
    if mode == "raw":
        assert repaired > 0  # random corners: the repair path ran


def test_json_schema_mode_alone_lets_bad_values_through(tiny):
    """JSON-schema grammars ignore numeric bounds and allow control characters in strings."""
    schema = {
        "type": "object",
        "required": ["name", "x0"],
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "x0": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    }
    schema_grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    # Real model, greedy: primed with pixel coordinates it writes x0 far above 100.
    llm = load_model()
    prompt = (
        'Boxes in pixels of a 1920 wide frame.\n{"name": "car", "x0": 1250}\n'
        '{"name": "tree", "x0": 1730}\n{"name": "dog", "x0": 1520}\n'
    )
    out = llm.create_completion(prompt, max_tokens=40, temperature=0, grammar=schema_grammar)
    value = json.loads(out["choices"][0]["text"])
    assert value["x0"] > 100  # parses, yet out of the schema's range
    bounded = LlamaGrammar.from_string(
        'root ::= "{\\"name\\": \\"" [a-z]+ "\\", \\"x0\\": " pct "}"\n'
        'pct ::= "100" | [1-9] [0-9] | [0-9]\n',
        verbose=False,
    )
    out = llm.create_completion(prompt, max_tokens=40, temperature=0, grammar=bounded)
    assert 0 <= json.loads(out["choices"][0]["text"])["x0"] <= 100
    # Random model, sampled: control characters inside strings and out-of-range integers.
    tiny_llm = load_model(tiny)
    bad = []
    for seed in range(8):
        text = tiny_llm.create_completion(
            "{", max_tokens=48, temperature=1.0, seed=seed, grammar=schema_grammar
        )["choices"][0]["text"]
        try:
            value = json.loads(text, strict=False)
        except json.JSONDecodeError:
            continue  # cut off at max_tokens
        if not 0 <= value["x0"] <= 100 or any(not c.isprintable() for c in value["name"]):
            bad.append(text)
    assert bad, "schema mode kept every sample in range: the claim needs a new check"


# -- the shipped model, end to end -------------------------------------------------------------


@pytest.mark.slow
def test_shipped_model_plans_every_instance_and_direction():
    cases = {
        "three cats walking to the left and a dog jumping on the right": 4,
        "a car driving from right to left and two birds flying up": 3,
        "four children playing in a park": 4,
    }
    for prompt, n in cases.items():
        plan = llm_plan(parse_prompt(prompt), frames=16)
        assert plan.planner == "llm:smollm2-135m", plan.warnings
        assert len(plan.objects) == n and plan.frames == 16
        assert _first_frame_ok(plan)
        for obj in plan.objects:
            dx, dy = _dx_dy(obj)
            if obj.noun in ("cat", "car"):
                assert dx < -0.05, (obj.id, dx)
            if obj.noun == "bird":
                assert dy < -0.05, (obj.id, dy)


@pytest.mark.slow
def test_shipped_model_raw_coordinates_mode():
    plan = llm_plan(parse_prompt("two dogs running to the right"), frames=8, mode="raw")
    assert plan.planner == "llm:smollm2-135m (raw)"
    assert [o.id for o in plan.objects] == ["dog-1", "dog-2"]
    assert all(_dx_dy(o)[0] > 0.05 for o in plan.objects) and _first_frame_ok(plan)


@pytest.mark.slow
def test_model_that_cannot_answer_in_time_falls_back_to_heuristic():
    parsed = parse_prompt("two dogs running to the right and a cat sleeping")
    plan = llm_plan(parsed, frames=16, timeout_s=0.001)
    assert plan.planner == "heuristic (llm fallback: timed out)"
    assert any("LLM planner failed (timed out)" in w for w in plan.warnings)
    assert len(plan.objects) == 3
    run = run_llm(parsed, frames=16, max_tokens=3)
    assert run.plan is None and "cut off at max_tokens=3" in run.failure


@pytest.mark.slow
def test_cli_plan_with_llm_planner():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "starvid",
            "plan",
            "a horse running to the right",
            "--planner",
            "llm",
            "--frames",
            "8",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["planner"] == "llm:smollm2-135m" and len(data["objects"][0]["boxes"]) == 8
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "starvid",
            "plan",
            "a horse",
            "--planner",
            "llm",
            "--model",
            "missing.gguf",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 2 and "missing.gguf" in proc.stderr


def test_stated_options_follow_the_words():
    parsed = parse_prompt("a cat walking to the right and a dog jumping on the left")
    assert stated_options(parsed, 0)[2] == ("right",)
    columns, _, directions = stated_options(parsed, 1)
    # the dog is placed on the left and hops where it is; the model may not send it travelling
    assert columns == ("left",) and directions == ("bounce",)


def test_specs_follow_the_shared_count_cap():
    """Both planners cap counts alike: 12 instances, largest counts cut first."""
    parsed = parse_prompt("ten cats sitting and five dogs sitting")
    counts, warnings = cap_counts(parsed)
    specs = object_specs(parsed, counts)
    assert counts == [7, 5] and len(specs) == MAX_INSTANCES
    assert [s.id for s in specs][6:8] == ["cat-7", "dog-1"]
    assert warnings == ["cat: planned 7 of 10 instances (at most 12 objects in a plan)"]
    # "0 cats": the parse leaves the cats out (with a warning), so nothing lays one out
    parsed = parse_prompt("0 cats and two dogs")
    assert parsed.warnings and [s.noun for s in parsed.subjects] == ["dog"]
    assert [s.id for s in object_specs(parsed, cap_counts(parsed)[0])] == ["dog-1", "dog-2"]


@pytest.mark.slow
def test_shipped_model_plans_a_capped_count_with_the_warning():
    plan = llm_plan(parse_prompt("twenty birds flying to the left"), frames=8)
    assert plan.planner == "llm:smollm2-135m" and len(plan.objects) == MAX_INSTANCES
    assert plan.warnings[0] == "bird: planned 12 of 20 instances (at most 12 objects in a plan)"
    assert all(_dx_dy(o)[0] < -0.05 for o in plan.objects) and _first_frame_ok(plan)


@pytest.mark.parametrize(
    "prompt, columns, rows, directions",
    [
        ("a car driving from the left side to the right side", ("left",), None, ("right",)),
        ("a dog running from the left edge of the frame to the right", ("left",), None, ("right",)),
        ("a bus driving from right to left", ("right",), None, ("left",)),
        ("a balloon floating from the bottom to the top", None, ("bottom",), ("up",)),
        ("a leaf falling from the top to the bottom", None, ("top",), ("down",)),
        (
            "a ball rolling from the top left corner to the bottom right corner",
            ("left",),
            ("top",),
            ("right", "down"),
        ),
        (
            "three birds flying from the lower left to the upper right",
            ("left",),
            ("bottom",),
            ("right", "up"),
        ),
        ("a fish swimming in from the right", ("right",), None, ("left",)),
    ],
)
def test_route_options_name_the_start_and_the_way(prompt, columns, rows, directions):
    got_columns, got_rows, got_directions = stated_options(parse_prompt(prompt), 0)
    assert got_columns == (columns or COLUMNS) and got_rows == (rows or ROWS)
    assert got_directions == directions


def test_repair_moves_a_raw_start_to_the_named_side(tiny):
    """Raw corners from a random model: the repair starts the path where the words say."""
    parsed = parse_prompt("a car driving from the right side of the frame to the left side")
    moved = 0
    for seed in range(6):
        run = run_llm(parsed, frames=8, seed=seed, model=tiny, mode="raw", timeout_s=60)
        assert run.failure is None, run.failure
        c = run.plan.objects[0].center_path()
        # the right half: a box 0.7 wide moves only until it meets the frame's edge
        assert c[0, 0] > 0.54 and c[-1, 0] < c[0, 0] - 0.05, (seed, c[0], c[-1])
        moved += any("to start right" in n for n in run.repairs)
    assert moved > 0  # random corners: the start had to be moved at least once


@pytest.mark.slow
def test_shipped_model_follows_routes():
    for prompt, sign_x, sign_y in [
        ("a ball rolling from the top left corner to the bottom right corner", 1, 1),
        ("a cat walking from the right side of the screen to the left side", -1, 0),
        ("a balloon floating from the bottom to the top", 0, -1),
    ]:
        plan = llm_plan(parse_prompt(prompt), frames=16)
        assert plan.planner == "llm:smollm2-135m", plan.warnings
        c = plan.objects[0].center_path()
        start, travel = c[0], c[-1] - c[0]
        for axis, sign in ((0, sign_x), (1, sign_y)):
            if sign:
                assert sign * (start[axis] - 0.5) < -0.05, (prompt, start)  # starts opposite
        # the coarse grammar moves along one axis: one of the named ways
        assert any(s and s * travel[a] > 0.05 for a, s in ((0, sign_x), (1, sign_y))), prompt


# -- issue 27: the Studio's examples, planned by the default planner -----------------------------

# What each shipped example says about each noun's motion: a planned direction the motion's
# label must hold ("left" holds "left" and not "right"), "still", or "moving" (anything but
# still or falling: "floating", "flying"). Every example the Studio ships must be here.
EXAMPLE_MOTIONS = {
    "two red circles moving left and a blue square jumping": {"circle": "left", "square": "hop"},
    "three yellow triangles moving up": {"triangle": "rise"},
    "a green square moving right and two blue circles staying still": {
        "square": "right",
        "circle": "still",
    },
    "a red triangle moving down and a yellow circle jumping": {
        "triangle": "descend",
        "circle": "hop",
    },
    "a cat walking to the right and a dog jumping on the left": {"cat": "right", "dog": "hop"},
    "three hot air balloons floating over a field": {"balloon": "moving"},
    "two dogs running to the left": {"dog": "left"},
    "a red car driving to the right and a bird flying": {"car": "right", "bird": "moving"},
}
_OPPOSITE = {"left": "right", "right": "left", "rise": "descend", "descend": "rise"}


def _agrees(label: str, want: str) -> bool:
    parts = label.split("+")
    if want == "still":
        return label == "still"
    if want == "moving":
        return label != "still" and "descend" not in parts
    return want in parts and _OPPOSITE.get(want) not in parts


def _instances_apart(plan) -> list[str]:
    """Pairs of instances of one subject whose boxes touch at some frame."""
    boxes, bad = plan.boxes_array(), []
    for i, a in enumerate(plan.objects):
        for j in range(i + 1, len(plan.objects)):
            if plan.objects[j].subject != a.subject:
                continue
            lo = np.maximum(boxes[i, :, :2], boxes[j, :, :2])
            hi = np.minimum(boxes[i, :, 2:], boxes[j, :, 2:])
            if np.any(np.all(hi > lo, axis=1)):
                bad.append(f"{a.id}/{plan.objects[j].id}")
    return bad


def test_every_shipped_example_is_in_the_motion_table():
    from starvid.ui.text import EXAMPLES, OPEN_EXAMPLES

    shipped = set(OPEN_EXAMPLES).union(*EXAMPLES.values())
    assert shipped == set(EXAMPLE_MOTIONS)


@pytest.mark.slow
@pytest.mark.parametrize("frames", [8, 24])
def test_every_shipped_example_plans_right_with_the_default_planner(frames):
    from starvid.planning import describe_motion, make_plan

    wrong = []
    for prompt, motions in EXAMPLE_MOTIONS.items():
        parsed = parse_prompt(prompt)
        plan = make_plan(parsed, frames=frames)  # the Studio's default: planner "auto"
        assert plan.planner == "llm:smollm2-135m", (prompt, plan.planner)
        counts = {s.noun: s.count for s in parsed.subjects}
        got = {noun: sum(o.noun == noun for o in plan.objects) for noun in counts}
        assert got == counts, (prompt, got)
        for obj in plan.objects:
            label = describe_motion(obj)
            if not _agrees(label, motions[obj.noun]):
                wrong.append(f"{prompt!r}: {obj.id} planned {label}, says {motions[obj.noun]}")
        wrong += [f"{prompt!r}: {pair} overlap" for pair in _instances_apart(plan)]
    assert not wrong, "\n".join(wrong)


def test_words_of_staying_and_verbs_of_motion_narrow_the_options():
    parsed = parse_prompt("a green square moving right and two blue circles staying still")
    assert stated_options(parsed, 1)[2] == ("still",)
    floating = stated_options(parse_prompt("three hot air balloons floating over a field"), 0)[2]
    assert "down" not in floating and "still" not in floating and "up" in floating
    for prompt, still in (("a dog still running", False), ("two circles not moving", True),
                          ("a cat sitting still", True)):  # fmt: skip
        assert (stated_options(parse_prompt(prompt), 0)[2] == ("still",)) is still, prompt
    specs = object_specs(parsed, [1, 2])
    assert [s.sizes for s in specs] == [("small", "medium", "large"), ("small",), ("small",)]


def test_repair_keeps_still_subjects_still_and_instances_apart():
    from starvid.planning.llm_prompts import coarse_box, coarse_keyframes
    from starvid.planning.llm_repair import repair

    still = ObjectSpec(id="circle-1", noun="circle", subject=0, verbs=["stay"],
                       directions=("still",))  # fmt: skip
    moving = coarse_keyframes(coarse_box("left", "middle", "small"), "right", "fast", 8)
    out, notes = repair([moving], [still], 8)
    assert len(out[0]) == 1 and "kept circle-1 still as the prompt says" in notes
    # three instances on top of each other, at different speeds: apart at every frame after
    specs = [ObjectSpec(id=f"t-{k}", noun="t", subject=0, verbs=["move"], directions=("up",))
             for k in range(3)]  # fmt: skip
    start = coarse_box("centre", "bottom", "medium")
    drafts = [coarse_keyframes(start, "up", s, 8) for s in ("slow", "medium", "fast")]
    out, notes = repair(drafts, specs, 8)
    from starvid.plan import interpolate_keyframes

    paths = np.asarray([interpolate_keyframes({k: tuple(b) for k, b in t.items()}, 8)
                        for t in out])  # fmt: skip
    for i in range(3):
        for j in range(i + 1, 3):
            lo = np.maximum(paths[i, :, :2], paths[j, :, :2])
            hi = np.minimum(paths[i, :, 2:], paths[j, :, 2:])
            assert not np.any(np.all(hi > lo, axis=1)), (i, j)
    assert all(_dx_dy_keys(t)[1] < -0.05 for t in out)


def _dx_dy_keys(keys):
    first, last = keys[min(keys)], keys[max(keys)]
    return ((last[0] + last[2]) - (first[0] + first[2])) / 2, (
        (last[1] + last[3]) - (first[1] + first[3])
    ) / 2
