"""The Studio's job runner: a generation in a worker thread, its progress as a stream of plain
events, cancellation (also while the run still waits in the queue) and the ETA.

The stream (``stream_generation``) takes and yields only picklable values, because on Hugging
Face ZeroGPU Spaces it runs under ``spaces.GPU`` in a forked GPU worker: its arguments and
events are pickled, so the cancel flag is named by a key (``cancel_event``) rather than passed.
Each run enters each module once: the parse comes from plan time, the backbone is loaded once
and the settings are resolved once (``starvid.run.prepare_run``).

``JOBS`` keeps one ticket per generate request of a browser session, from the moment the user
presses Generate (before the queue hands the request a worker) until the run ends, so a Cancel
pressed while the request is queued is kept and the run never starts.
"""

from __future__ import annotations

import itertools
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from starvid.parsing import ParsedPrompt
from starvid.plan import Plan
from starvid.ui.text import ProgressView

_CANCEL: dict[str, threading.Event] = {}
_CANCEL_LOCK = threading.Lock()


def cancel_event(key: str) -> threading.Event:
    """The cancel flag of one run, by key (created on first use)."""
    with _CANCEL_LOCK:
        return _CANCEL.setdefault(key, threading.Event())


def forget_cancel_event(key: str) -> None:
    """Drop a finished run's flag."""
    with _CANCEL_LOCK:
        _CANCEL.pop(key, None)


# -- tickets: the generate request of each session -----------------------------------------------


@dataclass
class Ticket:
    """One generate request, from the button press to the end of its run."""

    session: str
    key: str  # names the run's cancel flag
    state: str = "queued"  # queued, running, cancelled (before it ran) or finished
    done: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(init=False)  # the run's flag, also found by its key

    def __post_init__(self) -> None:
        self.cancel = cancel_event(self.key)


class Jobs:
    """The generate request of every session: one at a time per session (thread-safe).

    ``request`` (the button press) opens a ticket; the queued handler ``claim``s it when the
    queue hands it a worker. A ticket cancelled while queued stays until it is claimed (or a new
    request replaces it), so a handler that starts late still sees the cancel and does not run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, Ticket] = {}
        self._count = itertools.count(1)

    def request(self, session: str) -> Ticket | None:
        """Open a request; None when one is already queued or running for the session."""
        with self._lock:
            old = self._slots.get(session)
            if old is not None and old.state in ("queued", "running"):
                return None
            ticket = Ticket(session, f"{session}:{next(self._count)}")
            self._slots[session] = ticket
            return ticket

    def claim(self, session: str) -> Ticket | None:
        """The queued handler takes the session's request: running now, or cancelled (the
        caller says so and runs nothing); None when there is nothing to run."""
        with self._lock:
            ticket = self._slots.get(session)
            if ticket is None or ticket.state not in ("queued", "cancelled"):
                return None
            if ticket.state == "cancelled":
                self._close(ticket)
            else:
                ticket.state = "running"
            return ticket

    def finish(self, ticket: Ticket) -> None:
        """The run is over (done, failed, cancelled)."""
        with self._lock:
            self._close(ticket)

    def _close(self, ticket: Ticket) -> None:
        if ticket.state != "cancelled":
            ticket.state = "finished"
        ticket.done.set()
        forget_cancel_event(ticket.key)
        if self._slots.get(ticket.session) is ticket:
            del self._slots[ticket.session]

    def cancel(self, session: str) -> str:
        """Cancel the session's request: "queued" (it will never start), "running" (it stops
        at its next step) or "none"."""
        with self._lock:
            ticket = self._slots.get(session)
            if ticket is None or ticket.state not in ("queued", "running"):
                return "none"
            ticket.cancel.set()
            if ticket.state == "queued":
                ticket.state = "cancelled"
                return "queued"
            return "running"

    def wait(self, session: str, timeout_s: float) -> bool:
        """Wait until the session's running request is over; False on timeout."""
        with self._lock:
            ticket = self._slots.get(session)
        return ticket is None or ticket.state != "running" or ticket.done.wait(timeout_s)

    def running_elsewhere(self, session: str) -> bool:
        """Whether another session's run holds the worker."""
        with self._lock:
            return any(t.state == "running" for s, t in self._slots.items() if s != session)


JOBS = Jobs()


# -- the worker thread and its event stream ------------------------------------------------------


class GenerationJob:
    """Load the backbone, prepare and execute one run in a thread; progress as queued events."""

    def __init__(
        self,
        parsed: ParsedPrompt,
        plan: Plan,
        backbone: str,
        settings: dict,
        baseline: bool,
        cancel: threading.Event,
        folder: str | Path,
    ):
        self.events: queue.Queue = queue.Queue()
        self.cancel = cancel
        self.result = None
        self.error: BaseException | None = None
        self._args = (parsed, plan, backbone, settings, baseline, folder)
        self.thread = threading.Thread(target=self._run, name="starvid-generation", daemon=True)

    def _event(self, event) -> None:
        """The stream's plain events from the run's typed ``RunEvent``s."""
        p = event.step
        if p is not None:
            losses = dict(p.losses) if p.losses else None
            self.events.put(("progress", p.run, int(p.step), int(p.total), losses, p.maps))
        elif event.phase in ("loading", "running"):
            self.events.put(("phase", event.phase))

    def _run(self) -> None:
        from starvid.run import GenerationRequest, run_generation
        from starvid.settings import GenerationSettings

        parsed, plan, name, settings, baseline, folder = self._args
        try:
            request = GenerationRequest(
                parsed, name, GenerationSettings(**settings), plan, baseline
            )
            self.result = run_generation(request, folder, self._event, self.cancel)
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


def stream_generation(
    parsed: ParsedPrompt,
    plan: Plan,
    backbone: str,
    settings: dict,
    baseline: bool,
    cancel_key: str,
    poll_s: float = 0.25,
    folder: str | Path | None = None,
) -> Iterator[tuple]:
    """Run a generation and yield plain, picklable events as it goes.

    ``("phase", "loading" | "running")``, ``("progress", run, step, total, losses, maps)`` after
    every denoising step, then one ``("done", RunResult)`` or ``("error", exception)``. Closing
    the generator (the page was left, the run was cancelled) stops the worker at its next step.
    The worker writes the run folder (``starvid.run.run_generation``) into ``folder`` (default:
    a new temporary folder); the result's ``files`` name its files.
    """
    folder = folder if folder is not None else tempfile.mkdtemp(prefix="starvid-run-")
    job = GenerationJob(
        parsed, plan, backbone, settings, baseline, cancel_event(cancel_key), folder
    )
    job.start()
    try:
        while job.thread.is_alive() or not job.events.empty():
            yield from job.drain(poll_s)
        yield ("error", job.error) if job.error is not None else ("done", job.result)
    finally:
        if job.thread.is_alive():
            job.cancel.set()  # the worker stops at its next step; nobody waits for it here


def _gpu_decorator(duration: int = 180):
    """``spaces.GPU`` on Hugging Face ZeroGPU Spaces; a no-op elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


# On ZeroGPU the GPU is attached for the duration of this generator only; elsewhere a no-op.
gpu_stream_generation = _gpu_decorator()(stream_generation)


# -- progress and the time left -----------------------------------------------------------------


@dataclass
class RunClock:
    """Turns a run's events into what the progress bar shows; the time left is estimated from
    the steps done so far (loading the model does not count toward the rate)."""

    runs: int  # 1, or 2 with the baseline
    started: float = field(default_factory=time.monotonic)
    phase: str = "loading"
    running_since: float | None = None
    done_steps: int = 0  # over every run
    step: int = 0
    total: int = 0
    seen_runs: list[str] = field(default_factory=list)

    def event(self, event: tuple, now: float | None = None) -> None:
        """Take one stream event."""
        now = time.monotonic() if now is None else now
        if event[0] == "phase":
            self.phase = "loading" if event[1] == "loading" else self.phase
            if event[1] == "running":
                self.running_since = now
        elif event[0] == "progress":
            _, run, step, total, *_ = event
            if run not in self.seen_runs:
                self.seen_runs.append(run)
            self.phase, self.step, self.total = run, step, total
            self.done_steps = (len(self.seen_runs) - 1) * total + step
            if self.running_since is None:
                self.running_since = now

    def view(self, now: float | None = None) -> ProgressView:
        """The progress bar's content now."""
        now = time.monotonic() if now is None else now
        all_steps = self.total * self.runs
        remaining = None
        if self.done_steps and self.running_since is not None and all_steps:
            rate = (now - self.running_since) / self.done_steps
            remaining = rate * (all_steps - self.done_steps)
        return ProgressView(
            phase=self.phase,
            fraction=self.done_steps / all_steps if all_steps else 0.0,
            step=self.step,
            total=self.total,
            elapsed_s=now - self.started,
            remaining_s=remaining,
        )
