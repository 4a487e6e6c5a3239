"""The Studio's job runner: a generation in a worker thread, its progress as a stream of typed
events, cancellation (also while the run still waits in the queue) and the ETA.

The stream (``stream_generation``) takes a ``GenerationRequest`` and yields the run's own
``RunEvent``s, then one ``RunOutcome``: all picklable, because on Hugging Face ZeroGPU Spaces it
runs under ``spaces.GPU`` in a forked GPU worker whose arguments and events are pickled, so the
cancel flag is named by a key (``cancel_event``) rather than passed.
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
from typing import TYPE_CHECKING

from starvid.ui.text import ProgressView

if TYPE_CHECKING:
    from starvid.run import GenerationRequest, RunEvent, RunResult

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


@dataclass
class RunOutcome:
    """The end of a stream: the finished run, or what stopped it."""

    result: RunResult | None = None
    error: BaseException | None = None


class GenerationJob:
    """Run one request to its folder in a thread (``starvid.run.run_generation``); its progress
    events are queued as they come."""

    def __init__(self, request: GenerationRequest, cancel: threading.Event, folder: str | Path):
        self.events: queue.Queue[RunEvent] = queue.Queue()
        self.cancel = cancel
        self.request = request
        self.folder = folder
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="starvid-generation", daemon=True)

    def _run(self) -> None:
        from starvid.run import run_generation

        try:
            self.result = run_generation(self.request, self.folder, self.events.put, self.cancel)
        except BaseException as exc:  # noqa: BLE001 - reported to the user in one line
            self.error = exc

    def start(self) -> GenerationJob:
        self.thread.start()
        return self

    def drain(self, timeout: float) -> list[RunEvent]:
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
    request: GenerationRequest,
    cancel_key: str,
    poll_s: float = 0.25,
    folder: str | Path | None = None,
) -> Iterator[RunEvent | RunOutcome]:
    """Run a generation and yield its events as it goes.

    The run's ``RunEvent``s (a new phase; after every denoising step one with its
    ``StepProgress``), then one ``RunOutcome``. Closing the generator (the page was left, the
    run was cancelled) stops the worker at its next step. The worker writes the run folder
    (``starvid.run.run_generation``) into ``folder`` (default: a new temporary folder); the
    result's ``files`` name its files.
    """
    folder = folder if folder is not None else tempfile.mkdtemp(prefix="starvid-run-")
    job = GenerationJob(request, cancel_event(cancel_key), folder).start()
    try:
        while job.thread.is_alive() or not job.events.empty():
            yield from job.drain(poll_s)
        yield RunOutcome(job.result, job.error)
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

    def event(self, event: RunEvent, now: float | None = None) -> None:
        """Take one of the run's events."""
        now = time.monotonic() if now is None else now
        progress = event.step
        if progress is None:
            if event.phase == "loading":
                self.phase = "loading"
            elif event.phase == "running" and self.running_since is None:
                self.running_since = now
            return
        if progress.run not in self.seen_runs:
            self.seen_runs.append(progress.run)
        self.phase, self.step, self.total = progress.run, progress.step, progress.total
        self.done_steps = (len(self.seen_runs) - 1) * progress.total + progress.step
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
