"""StarVid Studio: the Gradio Blocks app (prompt -> plan -> edit boxes -> generate -> inspect).

The app calls the same functions as the CLI (``parse_prompt``, ``make_plan``, ``run_generation``,
``starvid.export``). The editing logic is plain functions over a JSON-able *editor state* so it can
be tested without a browser:

- ``state["plan"]``: the current Plan as the contract's dict (one box per object per frame);
- ``state["keyframes"]``: per object, the frames whose box is pinned (``{"cat-1": {"0": box}}``);
  every per-frame box is the linear interpolation of its object's keyframes
  (``starvid.plan.interpolate_keyframes``), so an edit at one frame bends the path smoothly;
- ``state["size"]``: the video's ``[width, height]``, for the canvas aspect.

Bad input never shows a traceback: handlers turn ``StarVidError`` (and out-of-memory) into a
visible notice and leave the editor state as it was.
"""

from __future__ import annotations

import html
import json
import logging
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from starvid import DEFAULT_BACKBONE
from starvid.errors import StarVidError
from starvid.plan import Plan, interpolate_keyframes, validate_plan
from starvid.viz import object_colors, rgb

log = logging.getLogger("starvid.ui")

CANVAS_WIDTH = 512
MIN_EDIT_SIZE = 0.02  # smallest box side a user edit may leave (fraction of the frame)
PIXEL_TOLERANCE = 1.5  # canvas pixels: less than this is rounding, not an edit
TOAST_S = 8  # seconds a warning stays up (the notice line under the prompt keeps it)
KEYFRAME_TOLERANCE = 0.002  # how far interpolation may stray from a planner's path
NOUN_LABEL_COLOR = (90, 90, 90)

# The shapes world first: the default backbone draws these; the others need a real backbone.
EXAMPLE_PROMPTS = [
    "two red circles moving left and a blue square jumping",
    "three yellow triangles moving up",
    "a green square moving right and two blue circles staying still",
    "a cat walking to the right and a dog jumping on the left",
    "three hot air balloons floating over a field",
    "two dogs running to the left",
    "a red car driving to the right and a bird flying",
]


# ---------------------------------------------------------------------------------------------
# editor state: pure functions


def new_editor(plan: Plan, parse: dict | None = None, size: Sequence[int] = (64, 64)) -> dict:
    """Editor state for a freshly planned or imported plan (keyframes found from its paths)."""
    state = {
        # the editor keeps the keyframes beside the boxes (an export puts them back)
        "plan": plan.model_dump(exclude_none=True, exclude={"objects": {"__all__": {"keyframes"}}}),
        "keyframes": {
            o.id: {str(k): list(v) for k, v in o.keyframes_or_fit().items()} for o in plan.objects
        },
        "parse": parse,
        "size": [int(size[0]), int(size[1])],
    }
    return _rebuild(state)  # the boxes are now exactly what the keyframes interpolate to


def editor_plan(state: dict | None) -> Plan:
    """The state's plan, validated; a clear error when there is none yet."""
    if not state or not state.get("plan"):
        raise StarVidError("no plan yet: type a prompt and press 'Plan'")
    return validate_plan(state["plan"])


def _keyframes(state: dict, oid: str) -> dict[int, tuple[float, ...]]:
    return {int(k): tuple(v) for k, v in state["keyframes"].get(oid, {}).items()}


def _rebuild(state: dict) -> dict:
    """Per-frame boxes from each object's keyframes."""
    frames = state["plan"]["frames"]
    for obj in state["plan"]["objects"]:
        kf = _keyframes(state, obj["id"])
        obj["boxes"] = [list(b) for b in interpolate_keyframes(kf, frames, obj["id"])]
    validate_plan(state["plan"])  # validates; raises StarVidError on anything odd
    return state


def repair_box(box: Sequence[float], min_size: float = MIN_EDIT_SIZE) -> tuple[list[float], str]:
    """Clamp a box (frame fractions) into the frame with a minimum size; says what it fixed."""
    x0, y0, x1, y1 = (float(v) for v in box)
    notes = []
    if x0 > x1:
        x0, x1 = x1, x0
    if y0 > y1:
        y0, y1 = y1, y0
    c = [min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1)]
    if any(abs(a - b) > 1e-6 for a, b in zip(c, (x0, y0, x1, y1), strict=True)):
        notes.append("moved back inside the frame")
    x0, y0, x1, y1 = c
    for lo, hi, axis in ((0, 2, "width"), (1, 3, "height")):
        if c[hi] - c[lo] < min_size:
            mid = min(max((c[lo] + c[hi]) / 2, min_size / 2), 1 - min_size / 2)
            c[lo], c[hi] = mid - min_size / 2, mid + min_size / 2
            notes.append(f"{axis} raised to the minimum {min_size:g}")
    return c, " and ".join(notes)


def canvas_size(size: Sequence[int], width: int = CANVAS_WIDTH) -> tuple[int, int]:
    """Canvas pixel size for a video of ``size=(width, height)``."""
    w, h = size
    return width, max(16, round(width * h / w))


def blank_background(size: Sequence[int]) -> np.ndarray:
    """A light canvas with a faint eighths grid, so positions read without a frame."""
    cw, ch = canvas_size(size)
    img = np.full((ch, cw, 3), 236, np.uint8)
    for i in range(1, 8):
        img[:, round(i * cw / 8)] = 214
        img[round(i * ch / 8), :] = 214
    img[:, cw // 2] = 196
    img[ch // 2, :] = 196
    return img


def fit_background(frame: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """A video frame resized (nearest) to the canvas."""
    cw, ch = canvas_size(size)
    h, w = frame.shape[:2]
    ys = np.minimum((np.arange(ch) * h / ch).astype(int), h - 1)
    xs = np.minimum((np.arange(cw) * w / cw).astype(int), w - 1)
    return np.ascontiguousarray(frame[ys][:, xs, :3]).astype(np.uint8)


def label_choices(state: dict) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Canvas labels: every object id, then each subject noun (a box labelled with a noun adds
    a new instance of it)."""
    plan = state["plan"]
    ids = [o["id"] for o in plan["objects"]]
    colors = object_colors(ids)
    nouns = []
    for o in plan["objects"]:
        if o["noun"] not in nouns:
            nouns.append(o["noun"])
    for s in (state.get("parse") or {}).get("subjects", []):
        if s["noun"] not in nouns:
            nouns.append(s["noun"])
    return ids + nouns, [colors[i] for i in ids] + [NOUN_LABEL_COLOR] * len(nouns)


def canvas_boxes(state: dict, frame: int) -> list[dict]:
    """The boxes at ``frame`` in canvas pixels, labelled and coloured per instance."""
    cw, ch = canvas_size(state["size"])
    ids = [o["id"] for o in state["plan"]["objects"]]
    colors = object_colors(ids)
    out = []
    for o in state["plan"]["objects"]:
        x0, y0, x1, y1 = o["boxes"][min(frame, len(o["boxes"]) - 1)]
        out.append(
            {
                "label": o["id"],
                "color": colors[o["id"]],
                "xmin": round(x0 * cw),
                "ymin": round(y0 * ch),
                "xmax": round(x1 * cw),
                "ymax": round(y1 * ch),
            }
        )
    return out


def _next_id(noun: str, taken: set[str]) -> str:
    n = 1
    while f"{noun}-{n}" in taken:
        n += 1
    return f"{noun}-{n}"


def apply_canvas(state: dict, frame: int, boxes: Sequence[dict]) -> tuple[dict, list[str], bool]:
    """Fold the canvas boxes at ``frame`` back into the editor state.

    A moved or resized box pins a keyframe for its object at ``frame``; a box missing from the
    canvas deletes its object (never the last one); a box labelled with a noun (or with an id
    already used) adds a new instance. Boxes outside the frame or too small are repaired.
    Returns ``(new_state, notices, canvas_needs_refresh)``; the input state is not modified.
    """
    state = json.loads(json.dumps(state))
    plan = state["plan"]
    frames = plan["frames"]
    frame = int(min(max(frame, 0), frames - 1))
    cw, ch = canvas_size(state["size"])
    by_id = {o["id"]: o for o in plan["objects"]}
    notices: list[str] = []
    refresh = False
    seen: set[str] = set()
    nouns = {o["noun"]: (o["subject"], o["verbs"]) for o in plan["objects"]}
    for i, s in enumerate((state.get("parse") or {}).get("subjects", [])):
        nouns.setdefault(s["noun"], (i, s.get("verbs", [])))
    entries = []
    for raw in boxes:
        label = str(raw.get("label") or "").strip()
        px = [raw["xmin"], raw["ymin"], raw["xmax"], raw["ymax"]]
        frac = [px[0] / cw, px[1] / ch, px[2] / cw, px[3] / ch]
        entries.append((label, frac, *repair_box(frac)))
    # Which box is an object's own when its label appears twice (a new box labelled with an
    # existing id): the one nearest the object's current box; the others are new instances.
    own: dict[str, tuple[int, float]] = {}
    for i, (label, _, box, _) in enumerate(entries):
        if label in by_id:
            d = float(np.abs(np.subtract(box, by_id[label]["boxes"][frame])).sum())
            if label not in own or d < own[label][1]:
                own[label] = (i, d)
    own_index = {i: label for label, (i, _) in own.items()}
    additions = []
    for i, (label, frac, box, fixed) in enumerate(entries):
        if i in own_index:
            seen.add(label)
            if fixed:
                notices.append(f"{label} at frame {frame}: {fixed}.")
                refresh = True
            old = by_id[label]["boxes"][frame]
            moved = max(
                abs(box[0] - old[0]) * cw,
                abs(box[1] - old[1]) * ch,
                abs(box[2] - old[2]) * cw,
                abs(box[3] - old[3]) * ch,
            )
            if moved > PIXEL_TOLERANCE or fixed:
                state["keyframes"].setdefault(label, {})[str(frame)] = box
                notices.append(
                    f"Pinned {label} at frame {frame}: [{', '.join(f'{v:.2f}' for v in box)}]."
                )
            continue
        if not label:
            continue  # just drawn: the canvas asks for its label first; it counts once labelled
        if min(abs(frac[2] - frac[0]), abs(frac[3] - frac[1])) < MIN_EDIT_SIZE:
            # a click with the box tool, not a drawn box: adding a speck would add an object
            notices.append("A new box needs a size (drag to draw it); ignored.")
            refresh = True
            continue
        noun = label if label in nouns else label.rsplit("-", 1)[0]
        if noun not in nouns:
            notices.append(
                f"{label}: label a new box with one of the nouns ({', '.join(nouns)}) to add an "
                "instance; ignored."
            )
            refresh = True
            continue
        if fixed:
            notices.append(f"new {noun} at frame {frame}: {fixed}.")
        additions.append((noun, box))
    removed = [oid for oid in by_id if oid not in seen]
    if removed and len(removed) == len(by_id) and not additions:
        notices.append("A plan needs at least one box; the last box was kept.")
        return state, notices, True
    for oid in removed:
        plan["objects"] = [o for o in plan["objects"] if o["id"] != oid]
        state["keyframes"].pop(oid, None)
        notices.append(f"Removed {oid}.")
    taken = {o["id"] for o in plan["objects"]}
    for noun, box in additions:
        oid = _next_id(noun, taken)
        taken.add(oid)
        subject, verbs = nouns[noun]
        plan["objects"].append(
            {
                "id": oid,
                "noun": noun,
                "subject": subject,
                "verbs": list(verbs),
                "boxes": [box] * frames,
            }
        )
        state["keyframes"][oid] = {str(frame): box}
        notices.append(f"Added {oid}.")
        refresh = True
    _rebuild(state)
    return state, notices, refresh or bool(removed)


def clear_keyframe(state: dict, frame: int) -> tuple[dict, list[str]]:
    """Unpin ``frame`` for every object that has other keyframes (its box is interpolated again)."""
    state = json.loads(json.dumps(state))
    notices = []
    for oid, kf in state["keyframes"].items():
        if str(frame) in kf and len(kf) > 1:
            del kf[str(frame)]
            notices.append(f"{oid}: keyframe {frame} removed.")
    return _rebuild(state), notices


def resample_editor(state: dict, frames: int) -> dict:
    """The same trajectories over another number of frames (keyframes rescaled in time)."""
    state = json.loads(json.dumps(state))
    old = state["plan"]["frames"]
    if frames == old:
        return state
    plan = validate_plan(state["plan"]).resample(frames)
    state["plan"] = plan.to_dict()
    scale = (frames - 1) / (old - 1) if old > 1 else 0.0
    for oid, kf in state["keyframes"].items():
        new = {}
        for k, box in sorted(kf.items(), key=lambda kv: int(kv[0])):
            new[str(round(int(k) * scale))] = box
        state["keyframes"][oid] = new
    return _rebuild(state)


def keyframe_summary(state: dict, frame: int) -> str:
    """One line per object: its keyframes, the current one in bold."""
    lines = []
    for o in state["plan"]["objects"]:
        ks = sorted(int(k) for k in state["keyframes"].get(o["id"], {}))
        shown = ", ".join(f"**{k}**" if k == frame else str(k) for k in ks)
        verbs = "/".join(o["verbs"]) or "still"
        lines.append(f"- `{o['id']}` ({verbs}): keyframes {shown}")
    return "\n".join(lines)


def word_subjects(parsed) -> dict[str, int]:
    """Heat-map label (the word as written, "#2" on repeats) -> index of the subject it belongs
    to: each noun and the verbs it does, in the order the engine labels its maps."""
    out: dict[str, int] = {}
    for i, sub in enumerate(parsed.subjects):
        for w in (sub.head, *sub.verbs):
            key, n = w.text, 2
            while key in out:
                key, n = f"{w.text}#{n}", n + 1
            out[key] = i
    return out


def parse_chips(parse: dict | None) -> str:
    """HTML chips for a parse: one per subject (count × noun) with its verbs bound to it."""
    if not parse:
        return ""
    colors = object_colors([s["noun"] + str(i) for i, s in enumerate(parse["subjects"])])
    chips = []
    for i, s in enumerate(parse["subjects"]):
        c = colors[s["noun"] + str(i)]
        verbs = (
            "".join(
                f'<span class="sv-verb" style="border-color:{rgb(c)}">{html.escape(v)}</span>'
                for v in s.get("verbs", [])
            )
            or '<span class="sv-verb sv-none">no verb</span>'
        )
        chips.append(
            f'<span class="sv-chip" style="background:{rgb(c, 0.15)};border-color:{rgb(c)}">'
            f'<b>{s["count"]} × {html.escape(s["noun"])}</b> <i>"{html.escape(s["text"])}"</i>'
            f" ← {verbs}</span>"
        )
    scene = "".join(
        f'<span class="sv-scene">{html.escape(w)}</span>' for w in parse.get("scene", [])
    )
    if scene:
        chips.append(f'<span class="sv-scene-label">scene:</span>{scene}')
    return f'<div class="sv-chips">{"".join(chips)}</div>'


def progress_html(run: str, step: int, total: int, losses: dict | None = None) -> str:
    """A progress bar with the current run and step and the latest losses."""
    pct = 100.0 * step / max(total, 1)
    done = run in ("idle", "done", "cancelled", "failed")
    text = html.escape(run) if done else f"{html.escape(run)}: step {step}/{total}"
    if losses:
        text += " · " + " · ".join(
            f"{k} {v:.4f}"
            for k, v in losses.items()
            if isinstance(v, (int, float)) and k not in ("step", "iteration")
        )
    return (
        f'<div class="sv-progress"><div class="sv-bar" style="width:{pct:.1f}%"></div>'
        f"<span>{text}</span></div>"
    )


def notice_md(notices: Sequence[str], kind: str = "note") -> str:
    """Markdown for notices (shown next to the control that caused them)."""
    if not notices:
        return ""
    icon = "⚠️" if kind == "error" else "ℹ️"
    return "\n".join(f"{icon} {n}" for n in notices)


# ---------------------------------------------------------------------------------------------
# runs: map storage, files, errors


def user_message(exc: BaseException) -> str:
    """One line for the UI; never a traceback."""
    if isinstance(exc, StarVidError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return (
            "out of memory: turn on 'save memory', lower frames, steps or resolution, or turn "
            "off 'baseline too' (the plan is kept)"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"internal error ({type(exc).__name__}{': ' + first[:200] if first else ''}); "
        "the plan is kept"
    )


def _out_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "starvid-studio" / uuid.uuid4().hex[:12]
    d.mkdir(parents=True, exist_ok=True)
    return d


def editor_plan_with_keyframes(state: dict) -> Plan:
    """The state's plan with its keyframes (what an export holds and an import restores)."""
    data = json.loads(json.dumps(state["plan"]))
    for obj in data["objects"]:
        obj["keyframes"] = {int(k): v for k, v in state["keyframes"].get(obj["id"], {}).items()}
    return validate_plan(data)


def write_plan_file(state: dict) -> str:
    """The state's plan as a JSON file for download; returns its path."""
    editor_plan(state)
    plan = editor_plan_with_keyframes(state)
    path = _out_dir() / "plan.json"
    path.write_text(plan.to_json(indent=2))
    return str(path)


def import_plan_file(path: str | None, state: dict | None, size: Sequence[int]) -> dict:
    """Editor state from an uploaded plan file (StarVidError with the offending field if bad)."""
    if not path:
        raise StarVidError("no file uploaded")
    from starvid.plan import read_plan_file

    plan = read_plan_file(path)
    parse = (state or {}).get("parse")
    return new_editor(plan, parse, size)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def store_maps(run_state: dict, run: str, step: int, maps: dict | None) -> None:
    """Keep one step's per-word maps ``(F, h, w)`` (float16, so a run's history stays small)."""
    if not maps:
        return
    steps = run_state.setdefault("maps", {}).setdefault(run, {})
    steps[int(step)] = {str(w): _to_numpy(m).astype(np.float16) for w, m in maps.items()}


def map_words(run_state: dict | None) -> list[str]:
    """Words with maps in any run, in first-seen order."""
    words: list[str] = []
    for steps in (run_state or {}).get("maps", {}).values():
        for per_word in steps.values():
            for w in per_word:
                if w not in words:
                    words.append(w)
    return words


def pick_map(
    run_state: dict, run: str, word: str, step: int | None
) -> tuple[np.ndarray, int] | None:
    """The map of ``word`` in ``run`` at ``step`` (or the nearest recorded step before it)."""
    steps = (run_state or {}).get("maps", {}).get(run, {})
    have = sorted(s for s, per_word in steps.items() if word in per_word)
    if not have:
        return None
    if step is None:
        chosen = have[-1]
    else:
        before = [s for s in have if s <= step]
        chosen = before[-1] if before else have[0]
    return np.asarray(steps[chosen][word], dtype=np.float32), chosen


def heatmap_for(
    run_state: dict | None, editor: dict | None, word: str | None, frame: int, step: int | None
):
    """The heat map figure for one word at one frame and step, guided and baseline side by side."""
    from starvid.viz import heatmap_figure

    if not run_state or not word:
        return None
    maps, frames_under, used = {}, {}, set()
    for run in ("guided", "baseline"):
        got = pick_map(run_state, run, word, step)
        if got is None:
            continue
        arr, chosen = got
        used.add(chosen)
        f = int(min(max(frame, 0), arr.shape[0] - 1))
        maps[run] = arr[f]
        video = run_state.get("frames", {}).get(run)
        if video is not None and len(video):
            frames_under[run] = np.asarray(video[min(f, len(video) - 1)])
    if not maps:
        return None
    boxes = []
    if editor and editor.get("plan"):
        owner = ((editor.get("parse") or {}).get("word_subjects") or {}).get(word)
        for o in editor["plan"]["objects"]:
            mine = o["subject"] == owner if owner is not None else word in (o["noun"], *o["verbs"])
            if mine and frame < len(o["boxes"]):
                boxes.append((o["id"], tuple(o["boxes"][frame])))
    step_text = ", ".join(str(s) for s in sorted(used))
    title = f"'{word}' at frame {frame}, step {step_text}"
    return heatmap_figure(maps, frames_under or None, title=title, boxes=boxes)


def settings_kwargs(values: dict, fields: Sequence[str]) -> dict:
    """Keep only the settings the engine's GenerationSettings knows (it may grow or shrink)."""
    return {k: v for k, v in values.items() if k in fields and v is not None}


# ---------------------------------------------------------------------------------------------
# generation (runs in a worker thread; the UI streams its progress)

_CANCEL: dict[str, threading.Event] = {}
_CANCEL_LOCK = threading.Lock()


def cancel_event(session: str) -> threading.Event:
    """The cancel flag of one browser session (a fresh one per run)."""
    with _CANCEL_LOCK:
        return _CANCEL.setdefault(session, threading.Event())


def request_cancel(session: str) -> bool:
    """Ask the session's running generation to stop at its next step; False when none runs."""
    with _CANCEL_LOCK:
        ev = _CANCEL.get(session)
    if ev is None:
        return False
    ev.set()
    return True


class GenerationJob:
    """``run_generation`` in a thread, its progress callbacks turned into a queue of events."""

    def __init__(
        self,
        prompt: str,
        plan: Plan,
        backbone: str,
        settings: dict,
        baseline: bool,
        parsed=None,
        cancel: threading.Event | None = None,
    ):
        self.events: queue.Queue = queue.Queue()
        self.cancel = cancel or threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self._args = (prompt, plan, backbone, settings, baseline, parsed)
        self.thread = threading.Thread(target=self._run, name="starvid-generation", daemon=True)

    def _progress(self, p) -> None:
        losses = dict(p.losses) if p.losses else None
        self.events.put((p.run, int(p.step), int(p.total), losses, p.maps))

    def _run(self) -> None:
        from starvid.backbones import load_backbone
        from starvid.run import execute, prepare_run
        from starvid.settings import GenerationSettings

        prompt, plan, backbone, settings, baseline, parsed = self._args
        try:
            if parsed is None:
                from starvid.parsing import parse_prompt

                parsed = parse_prompt(prompt)
            bb = load_backbone(backbone)
            request = prepare_run(
                parsed, bb, backbone, GenerationSettings(**settings), plan, baseline
            )
            self.result = execute(request, bb, progress=self._progress, cancel=self.cancel)
        except BaseException as exc:  # noqa: BLE001 - reported to the user in one line
            self.error = exc

    def start(self) -> GenerationJob:
        self.thread.start()
        return self

    def drain(self, timeout: float) -> list[tuple]:
        """Events that arrived within ``timeout`` seconds (at least one wait)."""
        out = []
        try:
            out.append(self.events.get(timeout=timeout))
            while True:
                out.append(self.events.get_nowait())
        except queue.Empty:
            pass
        return out


def save_run(result, out_dir: Path | None = None) -> tuple[dict[str, str], dict]:
    """The run's files (the run layer's layout) in a fresh folder; (file name -> path, report)."""
    from starvid.run import save_run as save_files

    files = save_files(result, out_dir or _out_dir())
    return {p.name: str(p) for p in files.values()}, result.report.model_dump(mode="json")


def _gpu_decorator(duration: int = 180):
    """``spaces.GPU`` on Hugging Face ZeroGPU Spaces; a no-op elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def stream_generation(
    prompt: str,
    plan: Plan,
    backbone: str,
    settings: dict,
    baseline: bool,
    parsed=None,
    cancel_key: str | None = None,
    poll_s: float = 0.4,
) -> Iterator[tuple]:
    """Run a generation and yield plain, picklable events as it goes.

    ``("progress", run, step, total, losses, maps)`` after every denoising step, then one
    ``("done", RunResult)`` or ``("error", exception)``. Plain data matters on ZeroGPU Spaces,
    where this generator runs in a forked GPU worker: its arguments and items are pickled, so
    the cancel flag is named by ``cancel_key`` (see ``cancel_event``) rather than passed. Closing
    the generator (the page was left, the run was cancelled) stops the worker at its next step.
    """
    cancel = cancel_event(cancel_key) if cancel_key is not None else None
    job = GenerationJob(prompt, plan, backbone, settings, baseline, parsed, cancel).start()
    try:
        while job.thread.is_alive() or not job.events.empty():
            for event in job.drain(poll_s):
                yield ("progress", *event)
        yield ("error", job.error) if job.error is not None else ("done", job.result)
    finally:
        if job.thread.is_alive():
            job.cancel.set()
            job.thread.join(timeout=60)


# On ZeroGPU the GPU is attached for the duration of this generator only; elsewhere a no-op.
gpu_stream_generation = _gpu_decorator()(stream_generation)


# ---------------------------------------------------------------------------------------------
# the app

CSS = """
.sv-chips {display:flex; flex-wrap:wrap; gap:6px; align-items:center; min-height:28px}
.sv-chip {border:1px solid; border-radius:14px; padding:2px 10px; font-size:14px}
.sv-verb {border:1px solid; border-radius:10px; padding:0 6px; margin-left:3px;
          background:white; font-size:13px; color:#222}
.sv-none {border-color:#bbb; color:#888}
.sv-scene {border-radius:10px; padding:1px 8px; background:#eee; color:#555; font-size:13px}
.sv-scene-label {color:#777; font-size:13px; margin-left:8px}
.sv-progress {position:relative; height:26px; background:#eee; border-radius:6px;
              overflow:hidden}
.sv-bar {position:absolute; left:0; top:0; bottom:0; background:#f59e0b55}
.sv-progress span {position:relative; padding-left:8px; line-height:26px; font-size:13px;
                   font-family:monospace}
#status, #notice {min-height:1.5em}
"""


def _backbone_defaults(name: str):
    from starvid.backbones import BACKBONES

    spec = BACKBONES.get(name) or BACKBONES[DEFAULT_BACKBONE]
    return spec.defaults


def build_app() -> Any:
    """The StarVid Studio Blocks app (call ``.queue(...).launch()`` on it)."""
    from gradio_image_annotation import image_annotator

    from starvid.backbones import BACKBONES, list_backbones
    from starvid.settings import GenerationSettings, default_guidance_steps
    from starvid.viz import inbox_share_figure, loss_figure, trajectory_figure

    fields = set(GenerationSettings.model_fields)
    gs = GenerationSettings()
    d0 = _backbone_defaults(DEFAULT_BACKBONE)

    def canvas_value(editor: dict | None, frame: int, run_state: dict | None) -> Any:
        size = (editor or {}).get("size") or [d0.width, d0.height]
        base = (run_state or {}).get("frames", {}).get("baseline")
        if base is not None and len(base) and (editor or {}).get("show_frame", True):
            bg = fit_background(np.asarray(base[min(frame, len(base) - 1)]), size)
        else:
            bg = blank_background(size)
        if not editor or not editor.get("plan"):
            return image_annotator(value={"image": bg, "boxes": []})
        labels, colors = label_choices(editor)
        return image_annotator(
            value={"image": bg, "boxes": canvas_boxes(editor, frame)},
            label_list=labels,
            label_colors=colors,
        )

    def canvas_out(editor: dict | None, frame: int, run_state: dict | None) -> tuple:
        """The canvas and the frame it shows: set together, so an edit event always knows which
        frame its boxes belong to even while the slider is being scrubbed."""
        return canvas_value(editor, frame, run_state), int(frame)

    def plan_views(editor: dict, frame: int) -> tuple:
        plan = editor_plan(editor)
        kf = {oid: [int(k) for k in v] for oid, v in editor["keyframes"].items()}
        w, h = editor["size"]
        traj = trajectory_figure(plan, current_frame=frame, keyframes=kf, aspect=h / w)
        return traj, keyframe_summary(editor, frame), plan.to_json(indent=2)

    def fail(msg: str, n: int) -> tuple:
        gr.Warning(msg, duration=TOAST_S)
        return (notice_md([msg], "error"),) + (gr.skip(),) * n

    # -- handlers ------------------------------------------------------------------------

    def on_plan(prompt, planner, frames, seed, backbone, run_state):
        try:
            from starvid.parsing import parse_prompt
            from starvid.planning import make_plan

            if not (prompt or "").strip():
                raise StarVidError(
                    f"the prompt is empty: describe the video, e.g. '{EXAMPLE_PROMPTS[0]}'"
                )
            parsed = parse_prompt(prompt)
            plan = make_plan(parsed, frames=int(frames), seed=int(seed), planner=planner)
            d = _backbone_defaults(backbone)
            parse = parsed.to_dict() | {"word_subjects": word_subjects(parsed)}
            editor = new_editor(plan, parse, (d.width, d.height))
            traj, summary, code = plan_views(editor, 0)
            notes = [f"Planned {len(plan.objects)} object(s) with the {plan.planner} planner."]
            notes += plan.warnings
            if backbone in BACKBONES and BACKBONES[backbone].is_local:
                # Shipped models load in a second; a closed vocabulary is worth saying up front.
                from starvid.backbones import load_backbone, vocabulary_warnings

                notes += vocabulary_warnings(prompt, load_backbone(backbone))
            return (
                notice_md(notes),
                editor,
                parse_chips(editor["parse"]),
                *canvas_out(editor, 0, run_state),
                gr.Slider(minimum=0, maximum=plan.frames - 1, value=0, step=1),
                traj,
                summary,
                code,
                write_plan_file(editor),
            )
        except Exception as exc:  # noqa: BLE001 - shown in one line, the old plan stays
            log.exception("planning failed") if not isinstance(exc, StarVidError) else None
            return fail(user_message(exc), 9)

    def on_canvas(editor, frame, value, run_state):
        if not editor or not editor.get("plan") or not value:
            return (gr.skip(),) * 6
        try:
            new, notices, refresh = apply_canvas(editor, int(frame), value.get("boxes") or [])
        except Exception as exc:  # noqa: BLE001
            msg = user_message(exc)
            gr.Warning(msg, duration=TOAST_S)
            return (
                notice_md([msg], "error"),
                gr.skip(),
                canvas_value(editor, frame, run_state),
                gr.skip(),
                gr.skip(),
                gr.skip(),
            )
        if new == editor and not notices:
            return (gr.skip(),) * 6
        for n in notices:
            if "ignored" in n or "moved back" in n or "raised" in n or "at least" in n:
                gr.Warning(n, duration=TOAST_S)
        traj, summary, code = plan_views(new, int(frame))
        canvas = canvas_value(new, int(frame), run_state) if refresh else gr.skip()
        return notice_md(notices) if notices else gr.skip(), new, canvas, traj, summary, code

    def on_frame(editor, frame, run_state):
        if not editor or not editor.get("plan"):
            return (gr.skip(),) * 4
        traj, summary, _ = plan_views(editor, int(frame))
        return *canvas_out(editor, int(frame), run_state), traj, summary

    def on_clear_keyframe(editor, frame, run_state):
        if not editor or not editor.get("plan"):
            return (gr.skip(),) * 7
        new, notices = clear_keyframe(editor, int(frame))
        if not notices:
            notices = [f"No object has a removable keyframe at frame {int(frame)}."]
        traj, summary, code = plan_views(new, int(frame))
        return (
            notice_md(notices),
            new,
            *canvas_out(new, int(frame), run_state),
            traj,
            summary,
            code,
        )

    def on_frames(editor, frames, frame, run_state):
        if not editor or not editor.get("plan") or not frames or int(frames) < 1:
            return (gr.skip(),) * 8
        if editor["plan"]["frames"] == int(frames):
            return (gr.skip(),) * 8
        try:
            new = resample_editor(editor, int(frames))
        except Exception as exc:  # noqa: BLE001
            return fail(user_message(exc), 7)
        f = min(int(frame), int(frames) - 1)
        traj, summary, code = plan_views(new, f)
        return (
            notice_md([f"Plan resampled to {int(frames)} frames."]),
            new,
            gr.Slider(minimum=0, maximum=int(frames) - 1, value=f, step=1),
            *canvas_out(new, f, run_state),
            traj,
            summary,
            code,
        )

    def backbone_text(name: str) -> str:
        import torch

        spec = BACKBONES.get(name)
        device = f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"
        return (f"*{spec.description}*" if spec else "") + f" Running on: {device}."

    def on_backbone(name, editor, frame, run_state):
        d = _backbone_defaults(name)
        out = [
            gr.Number(value=d.frames),
            gr.Number(value=d.steps),
            gr.Number(value=d.cfg_scale),
            gr.Slider(value=default_guidance_steps(d.steps)),
            gr.Slider(value=d.step_size),
            gr.Checkbox(value=d.checkpointing),
        ]
        if editor and editor.get("plan"):
            editor = json.loads(json.dumps(editor))
            editor["size"] = [d.width, d.height]
            # the canvas's pixel size follows the video's aspect: redraw it with the new size
            out += [editor, *canvas_out(editor, int(frame), run_state)]
        else:
            out += [gr.skip(), gr.skip(), gr.skip()]
        out.append(backbone_text(name))
        return out

    def on_import(path, editor, backbone, run_state):
        try:
            d = _backbone_defaults(backbone)
            new = import_plan_file(path, editor, (d.width, d.height))
            traj, summary, code = plan_views(new, 0)
            plan = editor_plan(new)
            return (
                notice_md(
                    [f"Imported a plan with {len(plan.objects)} object(s), {plan.frames} frames."]
                ),
                new,
                *canvas_out(new, 0, run_state),
                gr.Slider(minimum=0, maximum=plan.frames - 1, value=0, step=1),
                gr.Number(value=plan.frames),
                traj,
                summary,
                code,
            )
        except Exception as exc:  # noqa: BLE001
            return fail(user_message(exc) + " (your current plan is unchanged)", 8)

    def on_editor_change(editor):
        if not editor or not editor.get("plan"):
            return gr.skip()
        try:
            return write_plan_file(editor)
        except Exception:  # noqa: BLE001 - a stale export is better than none
            return gr.skip()

    def on_generate(
        prompt,
        editor,
        backbone,
        seed,
        frames,
        steps,
        cfg,
        spatial,
        syntax,
        guidance_steps,
        iterations,
        adjacent,
        step_size,
        save_memory,
        baseline,
        run_state,
        request: gr.Request,
    ):
        outputs_idle = {status: gr.skip()}
        try:
            plan = editor_plan(editor)
            prompt = (prompt or "").strip() or (plan.prompt or "")
            if not prompt:
                raise StarVidError("the prompt is empty")
            raw = {
                "seed": (seed, int),
                "frames": (frames, int),
                "steps": (steps, int),
                "cfg_scale": (cfg, float),
                "spatial_weight": (spatial, float),
                "syntax_weight": (syntax, float),
                "guidance_steps": (guidance_steps, int),
                "iterations": (iterations, int),
                "adjacent_frames": (adjacent, int),
                "step_size": (step_size, float),
                "checkpointing": (save_memory, bool),
            }
            empty = [k for k, (v, _) in raw.items() if v is None or v == ""]
            if empty:
                raise StarVidError(f"fill in the generation setting(s): {', '.join(empty)}")
            values = {k: cast(v) for k, (v, cast) in raw.items()}
            if plan.frames != values["frames"]:
                plan = plan.resample(values["frames"])
            from starvid.parsing import parse_prompt
            from starvid.settings import make_settings

            settings = make_settings(settings_kwargs(values, fields))
            # parsed here, not on the GPU worker: a bad prompt fails before any GPU time
            parsed = parse_prompt(prompt)
        except Exception as exc:  # noqa: BLE001
            msg = user_message(exc)
            gr.Warning(msg, duration=TOAST_S)
            yield outputs_idle | {status: notice_md([msg], "error")}
            return
        session = getattr(request, "session_hash", None) or "default"
        ev = cancel_event(session)
        ev.clear()
        stream = gpu_stream_generation(
            prompt,
            plan,
            backbone,
            settings.model_dump(exclude_unset=True),
            bool(baseline),
            parsed,
            session,
        )
        live: dict = {"maps": {}, "frames": {}, "report": None}
        runs = 2 if baseline else 1
        done_runs: list[str] = []
        yield {
            status: notice_md([f"Generating with {backbone} (seed {int(seed)})…"]),
            progress_bar: progress_html("starting", 0, int(steps) * runs),
        }
        outcome: tuple = ("error", StarVidError("the generation stopped without a result"))
        last_refresh = 0.0
        try:
            for event in stream:
                if event[0] != "progress":
                    outcome = event
                    break
                if ev.is_set():  # on ZeroGPU the worker cannot see this process's flag
                    from starvid.pipeline import Cancelled

                    outcome = ("error", Cancelled("generation cancelled"))
                    break
                _, run, step, total, losses, maps = event
                if run not in done_runs:
                    done_runs.append(run)
                store_maps(live, run, step, maps)
                if run == "guided" and losses:
                    _loss_rows(live, run, losses, step)
                if time.monotonic() - last_refresh < 0.3 and step < total:
                    continue  # fast models: refresh the page a few times a second at most
                last_refresh = time.monotonic()
                overall = (len(done_runs) - 1) * total + step
                words = map_words(live)
                fig = heatmap_for(live, editor, words[0] if words else None, 0, None)
                update = {progress_bar: progress_html(f"{run} run", overall, total * runs, losses)}
                if fig is not None:
                    update[heatmap] = fig
                if live.get("losses", {}).get("guided"):
                    update[loss_plot] = loss_figure(live["losses"]["guided"])
                yield update
        finally:
            # a closed handler (page left, queue cancelled) stops the worker too
            stream.close()
        if outcome[0] == "error":
            from starvid.pipeline import Cancelled

            error = outcome[1]
            cancelled = isinstance(error, Cancelled)
            msg = user_message(error)
            if not isinstance(error, StarVidError):
                log.error("generation failed", exc_info=error)
            if cancelled:
                msg += "; the previous results and the plan are kept"
                gr.Info(msg, duration=TOAST_S)
            else:
                gr.Warning(msg, duration=TOAST_S)
            # the heat map goes back to the last finished run, matching the videos shown
            old = heatmap_for(run_state, editor, (map_words(run_state) or [None])[0], 0, None)
            yield {
                status: notice_md([msg], "note" if cancelled else "error"),
                progress_bar: progress_html("cancelled" if cancelled else "failed", 0, 1),
                heatmap: old if old is not None else gr.skip(),
            }
            return
        result = outcome[1]
        try:
            files, report = save_run(result)
        except Exception as exc:  # noqa: BLE001
            msg = user_message(exc)
            gr.Warning(msg, duration=TOAST_S)
            yield {status: notice_md([msg], "error")}
            return
        live["frames"] = {"guided": result.guided.frames}
        if result.baseline is not None:
            live["frames"]["baseline"] = result.baseline.frames
        live["report"] = report
        live["total"] = result.request.settings.steps
        words = map_words(live)
        word = words[0] if words else None
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in report["timing_s"].items())
        notes = [
            f"Done: {timing}. To run it again from the command line: "
            "`python -m starvid generate --from-report report.json --out again`."
        ] + [f"{w}" for w in report.get("warnings", [])]
        ordered = list(files.values())  # the run folder, as the CLI writes it
        yield {
            status: notice_md(notes),
            progress_bar: progress_html("done", 1, 1),
            run_state_c: live,
            video_guided: files["guided.mp4"],
            video_baseline: files.get("baseline.mp4"),
            downloads: ordered,
            loss_plot: loss_figure(report.get("losses", [])),
            inbox_plot: inbox_share_figure(report),
            inbox_kind: "inbox_share",
            word_dd: gr.Dropdown(choices=words, value=word),
            heat_step: gr.Slider(
                minimum=1,
                maximum=result.request.settings.steps,
                value=result.request.settings.steps,
                step=1,
            ),
            heat_frame: gr.Slider(
                minimum=0, maximum=result.request.settings.frames - 1, value=0, step=1
            ),
            heatmap: heatmap_for(live, editor, word, 0, None),
            canvas: canvas_value(editor, 0, live),
            shown: 0,
            frame_slider: 0,
        }

    def on_cancel(request: gr.Request):
        session = getattr(request, "session_hash", None) or "default"
        if request_cancel(session):
            return notice_md(["Cancelling at the next step…"])
        return notice_md(["Nothing is running."])

    def on_show_frame(editor, show, frame, run_state):
        if not editor or not editor.get("plan"):
            return gr.skip(), gr.skip(), gr.skip()
        editor = dict(editor, show_frame=bool(show))
        return editor, *canvas_out(editor, int(frame), run_state)

    def on_heat(run_state, editor, word, frame, step):
        fig = heatmap_for(run_state, editor, word, int(frame), int(step))
        return fig if fig is not None else gr.skip()

    # -- layout --------------------------------------------------------------------------

    with gr.Blocks(title="StarVid Studio") as demo:
        gr.Markdown(
            "# StarVid Studio\nTraining-free semantic alignment for text-to-video diffusion "
            "([arXiv 2409.15259](https://arxiv.org/abs/2409.15259)): plan where each object "
            "goes, edit the boxes, and watch the cross-attention follow them."
        )
        editor = gr.State(None)
        run_state_c = gr.State(None)
        shown = gr.State(0)  # the frame the canvas shows

        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(
                    label="Prompt", lines=2, elem_id="prompt", placeholder=EXAMPLE_PROMPTS[0]
                )
                gr.Examples(EXAMPLE_PROMPTS, inputs=[prompt], label="Example prompts")
            with gr.Column(scale=2):
                planner = gr.Radio(
                    ["auto", "heuristic", "llm"],
                    value="auto",
                    label="Planner",
                    info="auto: the LLM when it is installed",
                )
                plan_btn = gr.Button("Plan", variant="primary", elem_id="plan-btn")
        chips = gr.HTML(elem_id="chips")
        notice = gr.Markdown(elem_id="notice")

        gr.Markdown(
            "## Layout\nHand tool (D) to move or resize a box, box tool (C) to add one (label "
            "it with a noun to add an instance), bin to delete. An edit pins a keyframe at the "
            "shown frame; frames in between follow by linear interpolation."
        )
        with gr.Row():
            with gr.Column(scale=3):
                canvas = image_annotator(
                    value={"image": blank_background((d0.width, d0.height)), "boxes": []},
                    label="Keyframe canvas",
                    elem_id="canvas",
                    sources=[],
                    show_clear_button=False,
                    show_download_button=False,
                    image_type="numpy",
                    show_remove_button=True,
                    handles_cursor=True,
                    box_min_size=4,
                    box_thickness=3,
                    box_selected_thickness=5,
                    boxes_alpha=0.3,
                )
                frame_slider = gr.Slider(
                    0,
                    d0.frames - 1,
                    value=0,
                    step=1,
                    label="Frame (edits pin a keyframe here)",
                    elem_id="frame",
                )
                show_frame = gr.Checkbox(
                    True, label="Show the baseline frame under the boxes (after a run)"
                )
                with gr.Row():
                    clear_kf = gr.Button("Unpin keyframe at this frame", size="sm")
                    export_btn = gr.DownloadButton("Export plan JSON", size="sm", elem_id="export")
                    import_btn = gr.UploadButton(
                        "Import plan JSON", size="sm", file_types=[".json"], elem_id="import"
                    )
            with gr.Column(scale=2):
                traj_plot = gr.Plot(label="Trajectories", elem_id="trajectory")
                summary = gr.Markdown(elem_id="keyframes")
                with gr.Accordion("Plan JSON", open=False):
                    plan_code = gr.Code(language="json", elem_id="plan-json")

        gr.Markdown("## Generation")
        with gr.Row():
            backbone = gr.Dropdown(
                list_backbones(), value=DEFAULT_BACKBONE, label="Backbone", elem_id="backbone"
            )
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
            frames = gr.Number(
                d0.frames, label="Frames", precision=0, minimum=1, maximum=512, elem_id="frames"
            )
            steps = gr.Number(
                d0.steps, label="Steps", precision=0, minimum=1, maximum=1000, elem_id="steps"
            )
            cfg = gr.Number(d0.cfg_scale, label="CFG scale", minimum=0, maximum=100, elem_id="cfg")
        backbone_info = gr.Markdown(backbone_text(DEFAULT_BACKBONE))
        with gr.Row():
            spatial = gr.Slider(
                0, 10, value=gs.spatial_weight, step=0.1, label="Spatial weight", elem_id="spatial"
            )
            syntax = gr.Slider(
                0, 10, value=gs.syntax_weight, step=0.1, label="Syntax weight", elem_id="syntax"
            )
            guidance_steps = gr.Slider(
                0,
                50,
                value=default_guidance_steps(d0.steps),
                step=1,
                label="Guidance window (first N steps)",
                elem_id="guidance-steps",
            )
            iterations = gr.Slider(
                0,
                10,
                value=gs.iterations,
                step=1,
                label="Iterations per step",
                elem_id="iterations",
            )
            adjacent = gr.Slider(
                0,
                7,
                value=gs.adjacent_frames,
                step=1,
                label="Adjacent frames (syntax loss)",
                elem_id="adjacent",
            )
            step_size = gr.Slider(
                0, 2, value=d0.step_size, step=0.05, label="Step size", elem_id="step-size"
            )
        with gr.Row():
            baseline = gr.Checkbox(
                True, label="Baseline too (same seed, no guidance)", elem_id="baseline"
            )
            save_memory = gr.Checkbox(
                d0.checkpointing,
                label="Save memory (recompute U-Net layers in guidance's backward pass; slower)",
                elem_id="save-memory",
            )
            gen_btn = gr.Button("Generate", variant="primary", elem_id="generate")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel")
        progress_bar = gr.HTML(progress_html("idle", 0, 1), elem_id="progress")
        status = gr.Markdown(elem_id="status")

        gr.Markdown("## Attention")
        with gr.Row():
            word_dd = gr.Dropdown([], label="Word (noun or verb)", elem_id="word")
            heat_frame = gr.Slider(
                0, d0.frames - 1, value=0, step=1, label="Frame", elem_id="heat-frame"
            )
            heat_step = gr.Slider(
                1, d0.steps, value=d0.steps, step=1, label="Step", elem_id="heat-step"
            )
        heatmap = gr.Plot(label="Cross-attention (guided | baseline)", elem_id="heatmap")
        with gr.Row():
            with gr.Column():
                inbox_kind = gr.Radio(
                    [
                        ("end of the guidance window", "inbox_share"),
                        ("last denoising steps", "inbox_share_final"),
                    ],
                    value="inbox_share",
                    label="In-box share measured at",
                )
                inbox_plot = gr.Plot(label="In-box attention share", elem_id="inbox")
            loss_plot = gr.Plot(label="Losses", elem_id="losses")

        gr.Markdown("## Results (same seed)")
        with gr.Row():
            video_guided = gr.Video(
                label="Guided (StarVid)",
                elem_id="video-guided",
                autoplay=True,
                loop=True,
                height=360,
            )
            video_baseline = gr.Video(
                label="Baseline", elem_id="video-baseline", autoplay=True, loop=True, height=360
            )
        downloads = gr.File(label="Downloads", file_count="multiple", elem_id="downloads")

        # -- wiring --------------------------------------------------------------------------
        plan_outputs = [
            notice,
            editor,
            chips,
            canvas,
            shown,
            frame_slider,
            traj_plot,
            summary,
            plan_code,
            export_btn,
        ]
        plan_btn.click(
            on_plan, [prompt, planner, frames, seed, backbone, run_state_c], plan_outputs
        )
        prompt.submit(on_plan, [prompt, planner, frames, seed, backbone, run_state_c], plan_outputs)
        canvas.change(
            on_canvas,
            [editor, shown, canvas, run_state_c],
            [notice, editor, canvas, traj_plot, summary, plan_code],
        )
        frame_slider.change(
            on_frame, [editor, frame_slider, run_state_c], [canvas, shown, traj_plot, summary]
        )
        clear_kf.click(
            on_clear_keyframe,
            [editor, frame_slider, run_state_c],
            [notice, editor, canvas, shown, traj_plot, summary, plan_code],
        )
        frames.change(
            on_frames,
            [editor, frames, frame_slider, run_state_c],
            [notice, editor, frame_slider, canvas, shown, traj_plot, summary, plan_code],
        )
        backbone.change(
            on_backbone,
            [backbone, editor, frame_slider, run_state_c],
            [
                frames,
                steps,
                cfg,
                guidance_steps,
                step_size,
                save_memory,
                editor,
                canvas,
                shown,
                backbone_info,
            ],
        )
        inbox_kind.input(
            lambda rs, kind: (
                inbox_share_figure(rs["report"], kind) if rs and rs.get("report") else gr.skip()
            ),
            [run_state_c, inbox_kind],
            [inbox_plot],
        )
        import_btn.upload(
            on_import,
            [import_btn, editor, backbone, run_state_c],
            [notice, editor, canvas, shown, frame_slider, frames, traj_plot, summary, plan_code],
        )
        editor.change(on_editor_change, [editor], [export_btn])
        show_frame.input(
            on_show_frame,
            [editor, show_frame, frame_slider, run_state_c],
            [editor, canvas, shown],
        )
        gen_inputs = [
            prompt,
            editor,
            backbone,
            seed,
            frames,
            steps,
            cfg,
            spatial,
            syntax,
            guidance_steps,
            iterations,
            adjacent,
            step_size,
            save_memory,
            baseline,
            run_state_c,
        ]
        gen_outputs = [
            status,
            progress_bar,
            run_state_c,
            video_guided,
            video_baseline,
            downloads,
            loss_plot,
            inbox_plot,
            inbox_kind,
            word_dd,
            heat_step,
            heat_frame,
            heatmap,
            canvas,
            shown,
            frame_slider,
        ]
        gen_btn.click(
            on_generate, gen_inputs, gen_outputs, show_progress="hidden", concurrency_id="generate"
        )
        cancel_btn.click(on_cancel, None, [status], queue=False)
        # .input (user moves only): programmatic updates after a run already drew the map, and
        # a .change racing the new slider range would be rejected by the old maximum
        for ctl in (word_dd, heat_frame, heat_step):
            ctl.input(on_heat, [run_state_c, editor, word_dd, heat_frame, heat_step], [heatmap])
    return demo


def _loss_rows(live: dict, run: str, losses: dict, step: int) -> list[dict]:
    """The live loss history of a run (one row per reported step)."""
    rows = live.setdefault("losses", {}).setdefault(run, [])
    rows.append({"step": step - 1, "iteration": 0, **losses})
    return rows
