"""What the Studio says: chips, notices, progress, the backbone menu and example prompts.

Plain functions from typed values to HTML or Markdown text, escaped, with no Gradio in them.
Colours come from one palette keyed by plan object (``starvid.ui.palette``): the same object has
the same colour on the canvas, in its chip and in every chart.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starvid.errors import StarVidError
from starvid.plan import Plan
from starvid.planning import MAX_INSTANCES, cap_counts, describe_motion
from starvid.ui.editor import EditorState, keyframes
from starvid.ui.palette import COLOUR_WORDS
from starvid.viz import rgb

Color = tuple[int, int, int]

# Example prompts per backbone. The shapes model knows only its world's words (its captions:
# counts, colours, shapes, motions); open-vocabulary models take everyday scenes.
SHAPES_EXAMPLES = (
    "two red circles moving left and a blue square jumping",
    "three yellow triangles moving up",
    "a green square moving right and two blue circles staying still",
    "a red triangle moving down and a yellow circle jumping",
)
OPEN_EXAMPLES = (
    "a cat walking to the right and a dog jumping on the left",
    "three hot air balloons floating over a field",
    "two dogs running to the left",
    "a red car driving to the right and a bird flying",
)
EXAMPLES = {"shapes": SHAPES_EXAMPLES}

# How a planned motion reads in a chip.
MOTION_ARROWS = {
    "left": "←",
    "right": "→",
    "rise": "↑",
    "descend": "↓",
    "hop": "⤴",
    "approach": "⤢",
    "recede": "⤡",
    "still": "·",
}


# Runs of symbols outside ASCII ("🚀", "→"): no closed-vocabulary model saw them.
SYMBOL_RUN = re.compile(r"[^\w\s\x00-\x7f]+")


def examples_for(backbone: str) -> tuple[str, ...]:
    """The example prompts that suit a backbone (its own world's words for a closed one)."""
    return EXAMPLES.get(backbone, OPEN_EXAMPLES)


# -- the parse as chips -------------------------------------------------------------------------


def _motion_text(plan: Plan, subject: int) -> str:
    objs = [o for o in plan.objects if o.subject == subject]
    if not objs:
        return ""
    motion = describe_motion(objs[0])
    arrows = "".join(MOTION_ARROWS.get(p, "") for p in motion.split("+"))
    return f"{arrows} {motion}"


def chips_html(state: EditorState, colors: dict[str, Color]) -> str:
    """One chip per planned subject: its swatches (one per planned object, in its colour), the
    count in the plan, the colour word of the prompt, the noun, the verbs bound to it and the
    planned direction. Counts follow the plan, so an added or removed box shows at once.
    Subjects the planners leave out (past the plan's instance limit) share one chip that says
    so; a subject whose boxes the user removed keeps its chip ("0 × blue square")."""
    chips, left_out = [], []
    capped = cap_counts(state.parsed)[0]
    for i, s in enumerate(state.parsed.subjects):
        objs = [o for o in state.plan.objects if o.subject == i]
        if not objs and not capped[i]:
            left_out.append(s.text)
            continue
        swatches = "".join(
            f'<span class="sv-swatch" data-object="{html.escape(o.id)}" title="{html.escape(o.id)}"'
            f' style="background:{rgb(colors[o.id])}"></span>'
            for o in objs
        )
        colour = " ".join(m.text for m in s.modifiers if m.lemma.lower() in COLOUR_WORDS)
        name = html.escape(f"{colour} {s.noun}".strip())
        verbs = "".join(f'<span class="sv-verb">{html.escape(v)}</span>' for v in s.verb_lemmas)
        verbs = verbs or '<span class="sv-verb sv-none">no verb</span>'
        motion = html.escape(_motion_text(state.plan, i))
        border = rgb(colors[objs[0].id]) if objs else "#999"
        chips.append(
            f'<span class="sv-chip" data-subject="{i}" style="border-color:{border}">'
            f"{swatches}<b>{len(objs)} × {name}</b> ← {verbs}"
            + (f' <span class="sv-dir">{motion}</span>' if motion else "")
            + "</span>"
        )
    if left_out:
        chips.append(
            f'<span class="sv-chip sv-none" data-left-out="{len(left_out)}">'
            f"+{len(left_out)} more subject(s) not planned: a plan holds at most "
            f"{MAX_INSTANCES} objects</span>"
        )
    scene = "".join(f'<span class="sv-scene">{html.escape(w)}</span>' for w in state.parsed.scene)
    if scene:
        chips.append(f'<span class="sv-scene-label">scene:</span>{scene}')
    return f'<div class="sv-chips">{"".join(chips)}</div>'


def unknown_words_html(prompt: str, unknown: Sequence[str], backbone: str) -> str:
    """The prompt with the words a closed-vocabulary backbone never saw marked, and a line
    saying what it knows (empty when every word is known)."""
    if not unknown:
        return ""
    bad = {w.lower() for w in unknown}
    # words and symbols at odd indices, what lies between at even
    parts = re.split(rf"([A-Za-z]+|{SYMBOL_RUN.pattern})", prompt)
    marked = "".join(
        f"<mark>{html.escape(p)}</mark>" if i % 2 and p.lower() in bad else html.escape(p)
        for i, p in enumerate(parts)
    )
    return (
        f'<div class="sv-unknown">⚠️ The <b>{html.escape(backbone)}</b> model knows only the '
        f"words of its world; it will not draw the marked ones: {marked}</div>"
    )


def keyframe_summary(state: EditorState, frame: int) -> str:
    """One line per object: its keyframes, the shown frame in bold."""
    lines = []
    for o in state.plan.objects:
        shown = ", ".join(f"**{k}**" if k == frame else str(k) for k in keyframes(o))
        lines.append(f"- `{o.id}` ({'/'.join(o.verbs) or 'still'}): keyframes {shown}")
    return "\n".join(lines)


# -- notices, errors, progress ----------------------------------------------------------------


def notice_html(notices: Sequence[str], kind: str = "note") -> str:
    """The notice bar's text: the first notice on one line, any others folded under "N more",
    and a close button (a checkbox the page's style reads, so it needs no script). A note fades
    after a while (the style's animation); an error stays until closed."""
    if not notices:
        return ""
    icon = "⚠️" if kind == "error" else "ℹ️"
    first, rest = notices[0], list(notices[1:])
    more = ""
    if rest:
        lines = "".join(f"<div>{html.escape(n)}</div>" for n in rest)
        more = f"<details><summary>{len(rest)} more</summary>{lines}</details>"
    close = (
        '<label class="sv-close" title="Close this notice">'
        '<input type="checkbox" aria-label="Close this notice">×</label>'
    )
    return (
        f'<div class="sv-notice sv-{kind}" role="status">{close}'
        f'<div class="sv-first">{icon} {html.escape(first)}</div>{more}</div>'
    )


def user_message(exc: BaseException) -> str:
    """One line for the user; never a traceback."""
    if isinstance(exc, StarVidError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return (
            "out of memory: turn on 'Save memory', lower frames, steps or resolution, or turn "
            "off 'Baseline too' (the plan is kept)"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"internal error ({type(exc).__name__}{': ' + first[:200] if first else ''}); "
        "the plan is kept"
    )


@dataclass(frozen=True)
class ProgressView:
    """What the progress bar shows: the phase and, while running, step and times."""

    phase: str  # idle, waiting, loading, guided, baseline, saving, done, cancelled, failed
    fraction: float = 0.0  # of the whole job (both runs)
    step: int = 0
    total: int = 0
    elapsed_s: float | None = None
    remaining_s: float | None = None
    detail: str = ""


PHASE_TEXT = {
    "idle": "Ready: plan a prompt, then press Generate.",
    "waiting": "Waiting for a free worker (another run is in progress)…",
    "loading": "Loading the model…",
    "saving": "Writing the videos and the report…",
    "done": "Done.",
    "cancelled": "Cancelled.",
    "failed": "Failed (see the notice below).",
}


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def progress_html(view: ProgressView) -> str:
    """A bar with the phase, the step of the current run, elapsed and remaining time."""
    if view.phase in ("guided", "baseline"):
        text = f"{view.phase} run: step {view.step}/{view.total}"
    else:
        text = PHASE_TEXT.get(view.phase, view.phase)
    times = []
    if view.elapsed_s is not None:
        times.append(f"{_seconds(view.elapsed_s)} elapsed")
    if view.remaining_s is not None:
        times.append(f"about {_seconds(view.remaining_s)} left")
    if times:
        text += " · " + ", ".join(times)
    if view.detail:
        text += " · " + view.detail
    pct = 100.0 * min(max(view.fraction, 0.0), 1.0)
    return (
        f'<div class="sv-progress" data-phase="{html.escape(view.phase)}" role="progressbar" '
        f'aria-valuenow="{pct:.0f}" aria-valuemin="0" aria-valuemax="100">'
        f'<div class="sv-bar" style="width:{pct:.1f}%"></div><span>{html.escape(text)}</span></div>'
    )


# -- the backbone menu ------------------------------------------------------------------------


def backbone_label(row: dict) -> str:
    """A menu line: name, CPU or GPU, and whether its weights are here or how much to fetch."""
    device = "needs a GPU" if row["needs_gpu"] else "runs on a CPU"
    if row["available_offline"]:
        where = "shipped" if row["source"].startswith("assets/") else "downloaded"
    else:
        where = f"{row['download_gb']:g} GB download"
    return f"{row['name']} · {device} · {where}"


def backbone_info(row: dict | None, device: str) -> str:
    """The line under the backbone menu: what the model is and where it would run."""
    text = f"{row['description']} " if row else "A hub id or a local diffusers folder. "
    return text + f"Running on: {device}."
