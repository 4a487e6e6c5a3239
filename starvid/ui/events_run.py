"""Steps 3 and 4: the handlers that generate, cancel and inspect a run.

Generate is two events: ``request`` (not queued: it records the request, so a Cancel pressed
while it waits in the queue is kept, and marks the last results stale) and then ``generate``
(queued, one run at a time across sessions), which streams the run's progress. The run takes
the editor's parse and plan as they are: nothing is parsed or planned again.
"""

from __future__ import annotations

import time

import gradio as gr

from starvid.errors import StarVidError
from starvid.run import GenerationRequest
from starvid.ui.debugger import debugger_outputs, done_update, recordings_of
from starvid.ui.editor import EditorState
from starvid.ui.events_edit import canvas_update, error_update, stale_text
from starvid.ui.form import settings_from_values
from starvid.ui.inspect import (
    LiveRun,
    heatmap_for,
    inbox_figure,
    losses_figure,
    run_difference,
    word_subjects,
)
from starvid.ui.jobs import JOBS, RunClock, RunOutcome, Ticket, gpu_stream_generation
from starvid.ui.layout import Studio
from starvid.ui.outputs import new_run_dir
from starvid.ui.palette import object_palette
from starvid.ui.text import ProgressView, notice_html, progress_html

REFRESH_S = 0.3  # fast models: the page is refreshed a few times a second at most
CANCEL_WAIT_S = 120.0  # how long Cancel waits for a running step to end


def generation_input(
    state: EditorState | None, prompt: str | None, backbone: str, values: dict, baseline: bool
) -> GenerationRequest:
    """Check a generate request against the editor: there is a plan, the prompt box still
    holds the prompt it was planned from, and the settings are valid; the typed request the
    worker runs (picklable, for ZeroGPU)."""
    if state is None:
        raise StarVidError("no plan yet: type a prompt and press Plan")
    typed = (prompt or "").strip()
    if not typed:  # a cleared or rejected prompt: running the old plan would surprise
        shown = state.prompt if len(state.prompt) <= 60 else state.prompt[:57] + "..."
        raise StarVidError(
            f"the prompt box is empty: the plan is for '{shown}'; put that prompt back or plan "
            "a new one"
        )
    if typed != state.prompt:
        raise StarVidError(
            "the prompt changed since it was planned: press Plan to plan the new one "
            "(or put back the planned prompt)"
        )
    settings = settings_from_values(values)
    return GenerationRequest(state.parsed, backbone, settings, state.plan, baseline)


class RunEvents:
    """Handlers of steps 3 and 4 (bound methods, so Gradio passes them the request)."""

    def __init__(self, ui: Studio):
        self.ui = ui

    def generate_outputs(self) -> list:
        """Every component the generate handler may change."""
        ui, i = self.ui, self.ui.inspect
        return [
            ui.notice,
            ui.generate.progress,
            ui.live,
            ui.generate.tabs,
            ui.edit.canvas,
            i.results_state,
            i.video_guided,
            i.video_baseline,
            i.video_previous,
            i.previous_info,
            i.downloads,
            i.loss_plot,
            i.inbox_plot,
            i.word,
            i.heat_step,
            i.heat_frame,
            i.heatmap,
            *debugger_outputs(i.debugger),
        ]

    def request(self, data: dict, request: gr.Request) -> dict:
        """Generate was pressed: record the request (it may wait in the queue) and mark the
        last results stale."""
        ui = self.ui
        if JOBS.request(request.session_hash) is None:
            return {
                ui.notice: notice_html(
                    ["A run is already waiting or running: Cancel it first."], "error"
                )
            }
        busy = JOBS.running_elsewhere(request.session_hash)
        out = {
            ui.notice: "",
            ui.generate.progress: progress_html(ProgressView("waiting" if busy else "loading")),
        }
        live = data.get(ui.live)
        if live is not None and live.report is not None:
            out[ui.inspect.results_state] = stale_text("a new run started")
        return out

    def generate(self, data: dict, request: gr.Request):
        """Run the plan: stream the progress, then show and offer the run's files."""
        ui, session = self.ui, request.session_hash
        ticket = JOBS.claim(session)
        if ticket is None:
            return  # nothing requested (another press of Generate already runs)
        live = data.get(ui.live)
        has_results = live is not None and live.report is not None
        if ticket.state == "cancelled":
            yield self.cancelled("Cancelled before it started", has_results)
            return
        try:
            values = {name: data[w] for name, w in ui.generate.settings.items()}
            job = generation_input(
                data.get(ui.editor),
                data[ui.prompt.prompt],
                data[ui.prompt.backbone],
                values,
                bool(data[ui.generate.baseline]),
            )
        except Exception as exc:  # noqa: BLE001
            JOBS.finish(ticket)
            yield error_update(ui, exc)
            return
        try:
            yield from self._run(ticket, job, data, session, has_results)
        finally:
            JOBS.finish(ticket)

    def _run(
        self, ticket: Ticket, job: GenerationRequest, data: dict, session: str, has_results: bool
    ):
        from starvid.pipeline import Cancelled

        ui = self.ui
        clock = RunClock(runs=2 if job.baseline else 1)
        words = word_subjects(job.parsed, job.settings.spatial_words, job.settings.syntax_words)
        live = LiveRun(word_subjects=words, parsed=job.parsed)
        yield {ui.generate.progress: progress_html(clock.view())}
        outcome = RunOutcome(error=StarVidError("the generation stopped without a result"))
        # The worker writes the run folder (run_generation).
        stream = gpu_stream_generation(job, ticket.key, folder=new_run_dir(session))
        last = 0.0
        try:
            for event in stream:
                if isinstance(event, RunOutcome):
                    outcome = event
                    break
                if ticket.cancel.is_set():  # on ZeroGPU the worker cannot see this flag
                    outcome = RunOutcome(error=Cancelled("generation cancelled"))
                    break
                clock.event(event)
                if (progress := event.step) is not None:
                    live.store_maps(progress.run, progress.step, progress.maps)
                    if progress.run == "guided":
                        live.store_losses(progress.step, progress.losses)
                if time.monotonic() - last > REFRESH_S:
                    last = time.monotonic()
                    yield self._live_update(live, clock, data)
        finally:
            stream.close()  # a closed handler (page left, run cancelled) stops the worker too
        if outcome.error is not None:
            error = outcome.error
            if isinstance(error, Cancelled):
                yield self.cancelled("Cancelled", has_results)
            else:
                yield error_update(ui, error) | {
                    ui.generate.progress: progress_html(ProgressView("failed"))
                }
            return
        result = outcome.result
        live.files = result.files
        live.frames = {"guided": result.guided.frames}
        if result.baseline is not None:
            live.frames["baseline"] = result.baseline.frames
        live.report = result.report
        live.recordings = recordings_of(result)
        yield self._done_update(live, clock, data)

    def _live_update(self, live: LiveRun, clock: RunClock, data: dict) -> dict:
        ui, i = self.ui, self.ui.inspect
        out = {ui.generate.progress: progress_html(clock.view())}
        words = live.words()
        fig = heatmap_for(live, data.get(ui.editor), words[0] if words else None, 0, None)
        if fig is not None:
            out[i.heatmap] = fig
        if live.losses:
            out[i.loss_plot] = losses_figure(live)
        return out

    def _done_update(self, live: LiveRun, clock: RunClock, data: dict) -> dict:
        ui, i = self.ui, self.ui.inspect
        report = live.report
        state = data.get(ui.editor)
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.timing_s.items())
        notes = [
            f"Done: {timing}. To run it again from the command line: "
            "python -m starvid generate --from-report report.json --out again"
        ] + list(report.warnings)
        words = live.words()
        word = words[0] if words else None
        colors = object_palette(report.plan, live.parsed)
        steps, frames = report.settings.steps, report.frames
        out = {
            ui.notice: notice_html(notes),
            ui.generate.progress: progress_html(
                ProgressView("done", 1.0, elapsed_s=time.monotonic() - clock.started)
            ),
            ui.live: live,
            ui.generate.tabs: gr.Tabs(selected="videos"),
            i.results_state: "",
            i.video_guided: str(live.files["guided"]),
            i.video_baseline: str(live.files["baseline"]) if "baseline" in live.files else None,
            i.downloads: [str(p) for p in live.files.values()],
            i.loss_plot: losses_figure(live),
            i.inbox_plot: inbox_figure(live, data.get(i.inbox_kind) or "inbox_share", colors),
            i.word: gr.Dropdown(choices=words, value=word),
            i.heat_step: gr.Slider(minimum=1, maximum=steps, value=steps, step=1),
            i.heat_frame: gr.Slider(minimum=0, maximum=frames - 1, value=0, step=1),
            i.heatmap: heatmap_for(live, state, word, 0, None),
        }
        out |= done_update(i.debugger, live, state, frames)
        before = data.get(ui.live)
        if before is not None and before.report is not None and "guided" in before.files:
            out[i.video_previous] = str(before.files["guided"])
            out[i.previous_info] = run_difference(before.report, report)
        if state is not None and state.plan.frames == frames:
            frame = int(data.get(ui.shown) or 0)
            background = data.get(ui.edit.background) or "guided"
            out[ui.edit.canvas] = canvas_update(state, frame, live, background)
        return out

    def cancelled(self, what: str, has_results: bool) -> dict:
        """The notice and progress of a cancelled run; the last results and the plan stay."""
        ui = self.ui
        kept = "the previous results and the plan are kept" if has_results else "the plan is kept"
        out = {
            ui.notice: notice_html([f"{what}; {kept}."]),
            ui.generate.progress: progress_html(ProgressView("cancelled")),
        }
        if has_results:
            note = "Showing the last finished run (the newer one was cancelled)."
            out[ui.inspect.results_state] = f'<div class="sv-stale">{note}</div>'
        return out

    def cancel(self, data: dict, request: gr.Request):
        """Cancel the session's run: a queued one never starts, a running one stops at its
        next step; the notice says "Cancelling…" until it has."""
        ui = self.ui
        live = data.get(ui.live)
        has_results = live is not None and live.report is not None
        status = JOBS.cancel(request.session_hash)
        if status == "none":
            yield {ui.notice: notice_html(["Nothing is running."])}
            return
        if status == "queued":
            yield self.cancelled("Cancelled before it started", has_results)
            return
        yield {ui.notice: notice_html(["Cancelling… (the run stops at its next step)"])}
        JOBS.wait(request.session_hash, CANCEL_WAIT_S)
        yield self.cancelled("Cancelled", has_results)

    # -- step 4 -----------------------------------------------------------------------------

    def heat(self, data: dict):
        """The heat map of the chosen word, frame and step."""
        i = self.ui.inspect
        fig = heatmap_for(
            data.get(self.ui.live),
            data.get(self.ui.editor),
            data[i.word],
            int(data[i.heat_frame] or 0),
            int(data[i.heat_step] or 1),
        )
        return fig if fig is not None else gr.skip()

    def inbox(self, data: dict):
        """The in-box share chart, measured at the chosen point of the run."""
        live = data.get(self.ui.live)
        if live is None or live.report is None:
            return gr.skip()
        colors = object_palette(live.report.plan, live.parsed)
        return inbox_figure(live, data[self.ui.inspect.inbox_kind], colors)
