"""StarVid Studio: the Gradio app (prompt -> plan -> edit boxes -> generate -> inspect).

The app calls the same functions as the CLI (``parse_prompt``, ``make_plan``, the run layer of
``starvid.run``). Modules: ``editor`` (the typed editor state and pure edits), ``form`` (the
settings widgets from the schema), ``text`` (chips, notices, progress), ``palette`` (one colour
per object, the prompt's own where it names one), ``inspect`` (a run's
maps and figures), ``jobs`` (the worker thread, cancel, ZeroGPU), ``outputs`` (private session
folders and their cleanup), ``layout`` (one function per step), ``events_edit`` and
``events_run`` (the handlers), ``app`` (wiring and launch options) and ``browser`` (Chromium
and the app process for the browser test and the load test).
"""

from starvid.ui.app import build_app, launch_options, warm_up
from starvid.ui.layout import CSS

__all__ = ["CSS", "build_app", "launch_options", "warm_up"]
