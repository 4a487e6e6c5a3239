"""A bounded load test of the Studio on 127.0.0.1: several users at once, in a real browser.

Starts ``python app.py`` on a free port and opens ``--users`` Chromium pages (Debian's
``/usr/bin/chromium`` through Playwright). Every user plans the first shapes example with the
heuristic planner and presses Generate at about the same time (default settings, baseline too);
then one more user queues a run and cancels it while it waits, and another queues a run and
closes the page (a disconnect). Prints, for every user, the seconds from Generate to Done and its
place in the queue, the total wall time, whether the cancelled request stayed unstarted, whether
the server still answers, and its peak memory (VmHWM).

    python benchmarks/load_test.py [--users 3] [--steps 20] [--json]

The queue runs one generation at a time (``concurrency_limit=1``): N users take about N times
one run. A pass: every user's run finishes, the cancelled one never starts, the disconnected
one does not stop the others, and the server answers afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starvid.ui.browser import CHROMIUM, CHROMIUM_ARGS, app_env, free_port  # noqa: E402

EXAMPLE = "two red circles moving left and a blue square jumping"


def start_app(port: int, log_path: Path) -> subprocess.Popen:
    """The real app in a subprocess, offline; returns once it answers."""
    env = app_env(port)
    log = open(log_path, "w")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 180
    while not answers(port):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"the app did not start; see {log_path}")
        time.sleep(0.5)
    return proc


def answers(port: int) -> bool:
    """Whether the server answers its front page."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def peak_memory_mb(pid: int) -> float:
    """The process's resident-set high-water mark."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _planned_page(browser, url: str, steps: int):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.locator("#generate").wait_for()
    page.locator("#planner input").click()
    page.get_by_role("option", name="heuristic", exact=True).click()
    page.locator("#examples").get_by_text(EXAMPLE).click()
    expect(page.locator("#notice")).to_contain_text("Planned", timeout=120_000)
    box = page.locator("#steps input[type=number]")
    box.fill(str(steps))
    box.press("Tab")
    return page


def run_load(users: int, steps: int, url: str) -> dict:
    """Drive the pages; returns the measurements."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = [_planned_page(browser, url, steps) for _ in range(users)]
        queued, leaver = _planned_page(browser, url, steps), _planned_page(browser, url, steps)
        t0 = time.monotonic()
        for page in pages:
            page.locator("#generate").click()
        leaver.locator("#generate").click()
        queued.locator("#generate").click()
        expect(queued.locator("#progress")).to_contain_text("Waiting for a free worker")
        queued.locator("#cancel").click()
        expect(queued.locator("#notice")).to_contain_text("Cancelled before it started")
        leaver.close()  # a disconnect while queued
        finished = {}
        pending = dict(enumerate(pages))
        deadline = time.monotonic() + 1800
        while pending and time.monotonic() < deadline:
            for k, page in list(pending.items()):
                if "Done" in (page.locator("#progress").inner_text() or ""):
                    finished[k] = round(time.monotonic() - t0, 1)
                    del pending[k]
            time.sleep(0.5)
        queued.wait_for_timeout(3000)
        cancelled_stayed = "step" not in queued.locator("#progress").inner_text()
        browser.close()
    return {
        "users": users,
        "done_after_s": [finished.get(k) for k in range(users)],
        "all_done": not pending,
        "wall_s": round(max(finished.values(), default=float("nan")), 1),
        "cancelled_never_started": cancelled_stayed,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} missing: apt-get install chromium", file=sys.stderr)
        return 2
    port = free_port()
    proc = start_app(port, Path("/tmp") / f"starvid-load-{port}.log")
    try:
        result = run_load(args.users, args.steps, f"http://127.0.0.1:{port}/")
        result["server_answers_after"] = answers(port)
        result["server_peak_mb"] = round(peak_memory_mb(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
    ok = result["all_done"] and result["cancelled_never_started"]
    return 0 if ok and result["server_answers_after"] else 1


if __name__ == "__main__":
    sys.exit(main())
