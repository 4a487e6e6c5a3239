"""End to end in headless Chromium: a newcomer's path through the Studio, and two users.

Starts the real app (``python app.py``) on a free port and drives it with Playwright through
Debian's Chromium (``apt-get install chromium``). Screenshots of every step land in
``tests/artifacts/`` for a human to look at. Without Chromium the test is skipped, except in CI
(``CI`` set), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from starvid.ui.browser import CHROMIUM, CHROMIUM_ARGS, app_env, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
VIEWPORT = {"width": 1440, "height": 1000}
CANVAS_TOOLS = {"Create box", "Drag boxes", "Remove box", "Edit label"}  # each changes the plan

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; in CI its absence is a failure, elsewhere a skip."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} missing: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def app_url(chromium):
    """The real app in a subprocess, offline, on a free localhost port."""
    port = free_port()
    env = app_env(port)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "app.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        if proc.poll() is not None:
            log.close()
            tail = (ARTIFACTS / "app.log").read_text()[-2000:]
            pytest.fail(f"app exited with {proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail("app did not start within 180 s")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a busy 2-core CI box is slow to answer
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser, url):
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("#generate").wait_for()
    return page


def _shot(page, name: str) -> None:
    """The window as a user sees it at the top of the page (clicks below scroll it)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# -- reading the page ---------------------------------------------------------------------------


def _download_json(page, locator) -> dict:
    with page.expect_download(timeout=30_000) as info:
        locator.click()
    return json.loads(Path(info.value.path()).read_text())


def _export_when(page, ready, timeout_s: float = 60.0) -> dict:
    """The exported plan once ``ready(plan)`` holds (the export follows edits asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        plan = _download_json(page, page.locator("#export"))
        if ready(plan) or time.monotonic() > deadline:
            return plan
        page.wait_for_timeout(500)


def _set_number(page, elem_id: str, value) -> None:
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input[type=number]").first
    for _ in range(3):
        box.fill(str(value))
        box.press("Enter")
        box.blur()  # the number is sent on change; leaving the box commits it
        # on a loaded machine an earlier event's late reply can overwrite the box (seen once
        # in a full run: guidance-steps back to 5 after an example's plan); type it again
        page.wait_for_timeout(1000)
        if box.input_value() == str(value):
            break
    expect(box).to_have_value(str(value))


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def _rgb(text: str) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in re.findall(r"\d+", text)[:3])
    return r, g, b


def _canvas_map(page, size: tuple[int, int]):
    """Frame fractions -> (screen point, canvas pixel) on the canvas (drawn scaled, centred),
    with the page scrolled to its top, where the whole canvas is in view (clicks elsewhere
    scroll the page)."""
    page.evaluate("window.scrollTo(0, 0)")
    canvas = page.locator("#canvas canvas").first
    bb = canvas.bounding_box()
    iw, ih = size
    scale = min(bb["width"] / iw, bb["height"] / ih)
    ox, oy = (bb["width"] - iw * scale) / 2, (bb["height"] - ih * scale) / 2

    def to_screen(x, y):
        return bb["x"] + ox + x * iw * scale, bb["y"] + oy + y * ih * scale

    def to_pixel(x, y):
        return round(ox + x * iw * scale), round(oy + y * ih * scale)

    return to_screen, to_pixel, iw * scale, ih * scale


def _canvas_color_near(page, x: int, y: int, want: tuple[int, int, int]) -> float:
    """Distance of the pixel nearest ``want`` in a small strip around canvas pixel (x, y)."""
    pixels = page.locator("#canvas canvas").first.evaluate(
        "(c, [x, y]) => Array.from(c.getContext('2d').getImageData(x - 3, y, 7, 1).data)",
        [x, y],
    )
    strip = [pixels[i : i + 3] for i in range(0, len(pixels), 4)]
    return min(sum((a - b) ** 2 for a, b in zip(p, want, strict=True)) ** 0.5 for p in strip)


def _legend_colors(page) -> dict[str, tuple[int, int, int]]:
    rows = page.locator("#trajectory .legend .traces").evaluate_all(
        "els => els.map(e => [e.querySelector('.legendtext').textContent,"
        " getComputedStyle(e.querySelector('.js-line')).stroke])"
    )
    return {name: _rgb(color) for name, color in rows}


def _chip_colors(page) -> dict[str, tuple[int, int, int]]:
    rows = page.locator("#chips .sv-swatch").evaluate_all(
        "els => els.map(e => [e.dataset.object, getComputedStyle(e).backgroundColor])"
    )
    return {name: _rgb(color) for name, color in rows}


def _eventually(page, check, timeout_s: float = 15.0) -> None:
    """Retry ``check()`` until its assertions hold: the canvas draws after its image loads."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.wait_for_timeout(300)


def _not_the_grid(page, pixel) -> None:
    assert _canvas_color_near(page, *pixel, (236, 236, 236)) > 30


def _mouse_drag(page, start, end) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def _centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _object(plan: dict, oid: str) -> dict:
    return next(o for o in plan["objects"] if o["id"] == oid)


# -- the newcomer's path --------------------------------------------------------------------------


def test_studio_end_to_end(app_url, browser):
    from playwright.sync_api import expect

    from starvid.backbones import BACKBONES
    from starvid.ui.editor import canvas_size

    page = _page(browser, app_url)
    try:
        _step_one_prompt(page, expect)
        planned = _step_two_plan_and_edit(page, expect, canvas_size((32, 32)))
        report = _step_three_generate(page, expect, planned)
        _step_four_cancel_and_switch(page, expect, report, BACKBONES)
    finally:
        page.screenshot(path=str(ARTIFACTS / "last.png"), full_page=True)
        page.close()


def _step_one_prompt(page, expect) -> None:
    # every control a screen reader reaches has a name it can say
    for control in page.locator("input, textarea, button, select").all():
        hidden = control.evaluate("e => !!e.closest('[aria-hidden=true]')")
        if control.is_visible() and not hidden:
            expect(control).to_have_accessible_name(re.compile(r"\w"), timeout=2000)
    prompt = page.locator("#prompt textarea")
    assert prompt.input_value() == ""  # the placeholder is not text...
    style = prompt.evaluate("e => getComputedStyle(e, '::placeholder').fontStyle")
    assert style == "italic"  # ...and does not look like it
    expect(page.locator("#step-size input[type=number]")).to_have_value("0.05")  # shapes' own
    _choose(page, "planner", "heuristic")
    page.locator("#plan-btn").click()
    expect(page.locator("#notice")).to_contain_text("prompt is empty")
    expect(page.locator("#progress")).not_to_contain_text("Done")
    # Enter plans; words the shapes model never saw are marked
    prompt.fill("a cat walking to the right and a dog jumping")
    expect(page.locator("#prompt-count")).to_have_text("44 / 1000 characters")
    prompt.press("Enter")
    marked = ["cat", "walking", "to", "the", "dog"]  # "right", "jumping": the shapes world's
    expect(page.locator("#unknown-words mark")).to_have_text(marked)
    _shot(page, "1-prompt")


def _step_two_plan_and_edit(page, expect, size) -> dict:
    _set_number(page, "frames", 4)
    page.locator("#examples").get_by_text("two red circles moving left and a blue square").click()
    expect(page.locator("#notice")).to_contain_text("Planned 3 object(s)")
    expect(page.locator("#chips")).to_contain_text("2 × red circle")
    expect(page.locator("#chips")).to_contain_text("1 × blue square")
    expect(page.locator("#unknown-words mark")).to_have_count(0)
    # Generate is in view without scrolling, and nothing scrolls sideways
    expect(page.locator("#generate")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    planned = _download_json(page, page.locator("#export"))
    assert planned["frames"] == 4 and len(planned["objects"]) == 3
    _shot(page, "2-plan")

    # no control that changes the view but not the plan: rotation is gone
    tools = {b.get_attribute("aria-label") for b in page.locator("#canvas button").all()
             if b.is_visible()}  # fmt: skip
    assert tools <= CANVAS_TOOLS and "Drag boxes" in tools

    # one palette: chip swatches, trajectory legend and canvas boxes share each object's colour
    chips, legend = _chip_colors(page), _legend_colors(page)
    assert set(chips) == set(legend) == {"circle-1", "circle-2", "square-1"}
    to_screen, to_pixel, sw, sh = _canvas_map(page, size)

    def boxes_drawn_in_their_colours():
        for oid, color in chips.items():
            x0, y0, _, y1 = _object(planned, oid)["boxes"][0]
            assert _canvas_color_near(page, *to_pixel(x0, (y0 + y1) / 2), color) < 40, oid

    assert all(legend[oid] == color for oid, color in chips.items())
    _eventually(page, boxes_drawn_in_their_colours)
    # the mouse wheel does not zoom the canvas away from the plan (it scrolls the page)
    page.mouse.move(*to_screen(0.5, 0.5))
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(300)
    to_screen, to_pixel, sw, sh = _canvas_map(page, size)
    boxes_drawn_in_their_colours()

    # a drag with the canvas's default tool moves a box and adds nothing
    square = _object(planned, "square-1")["boxes"][0]
    start = to_screen(*_centre(square))
    _mouse_drag(page, start, (start[0] - 60, start[1] - 20))
    expect(page.locator("#notice")).to_contain_text("Pinned square-1 at frame 0")
    moved = _export_when(page, lambda p: _object(p, "square-1")["boxes"][0] != square)
    assert [o["id"] for o in moved["objects"]] == ["circle-1", "circle-2", "square-1"]
    new = _object(moved, "square-1")["boxes"][0]
    assert new[0] == pytest.approx(square[0] - 60 / sw, abs=0.02)
    assert new[1] == pytest.approx(square[1] - 20 / sh, abs=0.02)
    assert _object(moved, "square-1")["keyframes"].keys() >= {"0"}

    # "Add object" adds a circle where there is room, the chips follow; the bin removes it
    page.locator("#add-object").click()
    expect(page.locator("#notice")).to_contain_text("Added circle-3")
    expect(page.locator("#chips")).to_contain_text("3 × red circle")
    _shot(page, "2b-added")
    added = _export_when(page, lambda p: len(p["objects"]) == 4)
    to_screen, _, _, _ = _canvas_map(page, size)
    page.mouse.click(*to_screen(*_centre(_object(added, "circle-3")["boxes"][0])))
    page.locator('#canvas button[aria-label="Remove box"]').click()
    expect(page.locator("#notice")).to_contain_text("Removed circle-3")
    expect(page.locator("#chips")).to_contain_text("2 × red circle")

    # a malformed plan upload is refused with a message; the edited plan stays
    bad = ARTIFACTS / "bad-plan.json"
    bad.write_text('{"frames": 4, "objects": [{"id": "x", "noun": "circle", "subject": 0}]}')
    with page.expect_file_chooser() as chooser:
        page.locator("#import").click()
    chooser.value.set_files(str(bad))
    expect(page.locator("#notice")).to_contain_text("invalid plan")
    expect(page.locator("#notice")).to_contain_text("unchanged")
    edited = _export_when(page, lambda p: len(p["objects"]) == 3)
    assert _object(edited, "square-1")["boxes"] == _object(moved, "square-1")["boxes"]
    return edited


def _step_three_generate(page, expect, edited: dict):
    from starvid.report import RunReport
    from starvid.ui.editor import canvas_size

    _set_number(page, "steps", 3)
    page.locator("#more-settings").get_by_text("More settings").click()
    page.locator("#guidance-steps input[type=number]").wait_for()
    _set_number(page, "guidance-steps", 2)
    _set_number(page, "iterations", 2)
    page.locator("#generate").click()
    expect(page.locator("#progress")).to_contain_text(re.compile("Loading the model|run: step"))
    _shot(page, "3-generating")
    expect(page.locator("#progress")).to_contain_text("Done", timeout=240_000)
    expect(page.locator("#notice")).to_contain_text("--from-report report.json")
    for video in ("#video-guided video", "#video-baseline video"):
        expect(page.locator(video)).to_have_attribute("src", re.compile(r"\.mp4"))
    _shot(page, "4-videos")
    page.get_by_role("tab", name="Files").click()
    files = page.locator("#downloads")
    for name in ("guided.mp4", "baseline.mp4", "side_by_side.mp4", "plan.json", "report.json",
                 "maps.npz"):  # fmt: skip
        expect(files.locator(f'a[href$="/{name}"]')).to_have_count(1)
    report = RunReport.model_validate(
        _download_json(page, files.locator('a[href$="/report.json"]'))
    )
    # the run used the edited plan
    used = report.plan.object("square-1").boxes[0]
    assert used == pytest.approx(_object(edited, "square-1")["boxes"][0], abs=1e-6)
    # the in-box chart's means are the report's
    page.get_by_role("tab", name="In-box").click()
    # plotly draws the chart after the tab opens; read at once, a loaded machine found no legend
    expect(page.locator("#inbox .legendtext").first).to_be_attached()
    legend = page.locator("#inbox .legendtext").all_text_contents()
    for oid, runs in report.share_means().items():
        for run, mean in runs.items():
            assert f"{oid} {run} (mean {mean:.2f})" in legend
    _shot(page, "4-inbox")
    # the loss chart has each term's share of every guided step's update
    page.get_by_role("tab", name="Losses").click()
    shares = [r.spatial_share for r in report.losses if r.spatial_share is not None]
    assert len(shares) == report.settings.guidance_steps == 2
    expect(page.locator("#losses .legendtext")).to_contain_text(["syntax share"])
    bars = page.locator("#losses .barlayer .point")
    expect(bars).to_have_count(2 * len(shares))
    _shot(page, "4-losses")
    page.get_by_role("tab", name="Attention").click()
    _choose(page, "word", "jumping")
    expect(page.locator("#heatmap")).to_contain_text("'jumping' at frame 0")
    expect(page.locator("#heatmap .js-plotly-plot .hm")).to_have_count(2)  # both runs
    _shot(page, "4-attention")
    # the canvas shows the guided frame now, as its background choice says (not the grid)
    expect(page.locator("#background").get_by_label("guided frame")).to_be_checked()
    _, to_pixel, _, _ = _canvas_map(page, canvas_size((32, 32)))
    _eventually(page, lambda: _not_the_grid(page, to_pixel(0.02, 0.02)))
    return report


def _step_four_cancel_and_switch(page, expect, report, BACKBONES) -> None:
    # a longer run: the last results are marked stale, then Cancel; "Cancelling…" clears
    page.get_by_role("tab", name="Settings").click()
    _set_number(page, "steps", 40)
    page.get_by_role("tab", name="Videos").click()
    page.locator("#generate").click()
    expect(page.locator("#results-state")).to_contain_text("previous run")
    expect(page.locator("#progress")).to_contain_text("run: step", timeout=120_000)
    expect(page.locator("#progress")).to_contain_text("left")  # the time left, estimated
    page.locator("#cancel").click()
    expect(page.locator("#notice")).to_contain_text("Cancelled;", timeout=120_000)
    expect(page.locator("#notice")).not_to_contain_text("Cancelling")
    expect(page.locator("#progress")).to_contain_text("Cancelled.")
    expect(page.locator("#video-guided video")).to_have_attribute("src", re.compile("mp4"))
    _shot(page, "5-cancelled")

    # another backbone: the settings the user changed stay, the others take its defaults
    tiny = BACKBONES["tiny"].defaults
    page.get_by_role("tab", name="Settings").click()
    _choose(page, "backbone", "tiny · runs on a CPU · shipped")
    expect(page.locator("#step-size input[type=number]")).to_have_value(f"{tiny.step_size:g}")
    expect(page.locator("#cfg-scale input[type=number]")).to_have_value(f"{tiny.cfg_scale:g}")
    expect(page.locator("#steps input[type=number]")).to_have_value("40")
    expect(page.locator("#frames input[type=number]")).to_have_value("4")
    expect(page.locator("#examples")).to_contain_text("three hot air balloons")
    _shot(page, "6-backbone")


# -- two users: a run cancelled while it waits in the queue never starts --------------------------


def test_cancel_while_queued(app_url, browser):
    from playwright.sync_api import expect

    first, second = _page(browser, app_url), _page(browser, app_url)
    try:
        for page in (first, second):
            _choose(page, "planner", "heuristic")
            _set_number(page, "frames", 4)
            page.locator("#examples").get_by_text("three yellow triangles moving up").click()
            expect(page.locator("#notice")).to_contain_text("Planned 3 object(s)")
        _set_number(first, "steps", 60)
        first.locator("#generate").click()
        expect(first.locator("#progress")).to_contain_text("run: step", timeout=120_000)
        second.locator("#generate").click()
        expect(second.locator("#progress")).to_contain_text("Waiting for a free worker")
        second.locator("#cancel").click()
        expect(second.locator("#notice")).to_contain_text("Cancelled before it started")
        _shot(second, "7-cancelled-while-queued")
        first.locator("#cancel").click()
        expect(first.locator("#progress")).to_contain_text("Cancelled.", timeout=120_000)
        # the worker is free now: a request that had survived would start within seconds
        second.wait_for_timeout(5000)
        expect(second.locator("#progress")).to_contain_text("Cancelled.")
        expect(second.locator("#progress")).not_to_contain_text("step")
        expect(second.locator("#video-guided video")).to_have_count(0)
    finally:
        first.close()
        second.close()


# -- issue 27: the editing path, second pass ------------------------------------------------------


def _plan_example(page, expect, text: str, planner: str = "heuristic", frames: int | None = None):
    _choose(page, "planner", planner)
    if frames:
        _set_number(page, "frames", frames)
    page.locator("#examples").get_by_text(text).click()
    expect(page.locator("#notice")).to_contain_text("Planned")


def test_a_model_switch_pins_nothing(app_url, browser):
    from playwright.sync_api import expect

    page = _page(browser, app_url)
    try:
        _plan_example(page, expect, "two red circles moving left and a blue square")
        _set_number(page, "frame", 3)  # the canvas on frame 3, as the issue found it
        before = _download_json(page, page.locator("#export"))
        for name, frames in (("zeroscope", 24), ("shapes", 8)):
            page.locator("#backbone input").click()
            page.get_by_role("option", name=re.compile(f"^{name} ·")).click()
            expect(page.locator("#frames input[type=number]")).to_have_value(str(frames))
            page.wait_for_timeout(3000)  # the canvas's echo and the frames event come back
            plan = _export_when(page, lambda p, n=frames: p["frames"] == n)
            assert plan["frames"] == frames
            assert not [o["id"] for o in plan["objects"] if "keyframes" in o], name
        assert plan["objects"] == before["objects"]
        _shot(page, "8-model-switched-back")
    finally:
        page.close()


def test_charts_fit_their_tabs_and_the_previous_run_stays(app_url, browser):
    from playwright.sync_api import expect

    page = _page(browser, app_url)
    try:
        _plan_example(page, expect, "two red circles moving left and a blue square", frames=4)
        for steps in (3, 4):
            page.get_by_role("tab", name="Settings").click()
            _set_number(page, "steps", steps)
            page.locator("#generate").click()
            expect(page.locator("#progress")).to_contain_text("Done", timeout=240_000)
            for tab in ("Attention", "In-box", "Losses") if steps == 3 else ():
                page.get_by_role("tab", name=tab).click()  # drawn once in view
        expect(page.locator("#previous-info")).to_contain_text("steps 3 (now 4)")
        expect(page.locator("#video-previous video")).to_have_attribute("src", re.compile("mp4"))
        _shot(page, "9-previous-run")
        # the second run redrew these charts while the Videos tab was shown
        for tab, elem, part in (("Attention", "heatmap", ".colorbar"),
                                ("In-box", "inbox", ".legendtext"),
                                ("Losses", "losses", ".legendtext")):  # fmt: skip
            page.get_by_role("tab", name=tab).click()

            def fits(elem=elem, part=part):
                box = page.locator(f"#{elem}").bounding_box()
                svg = page.locator(f"#{elem} .main-svg").first.bounding_box()
                assert svg["width"] <= box["width"] + 1, (elem, svg["width"], box["width"])
                assert page.locator(f"#{elem} {part}").first.is_visible()

            _eventually(page, fits)
            _shot(page, f"9-{elem}")
        expect(page.locator("#heatmap .js-plotly-plot .hm")).to_have_count(2)
    finally:
        page.close()


def _contrast(page, selector: str) -> list[tuple[str, float]]:
    """WCAG contrast of each visible element's text colour against white."""
    colors = page.locator(selector).evaluate_all(
        "els => els.filter(e => e.offsetParent).map(e => [e.textContent.slice(0, 30),"
        " getComputedStyle(e).color])"
    )

    def lum(c):
        c = [v / 255 for v in _rgb(c)]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    return [(text, 1.05 / (lum(color) + 0.05)) for text, color in colors]


def test_long_input_the_notice_bar_and_help_text(app_url, browser):
    from playwright.sync_api import expect

    page = _page(browser, app_url)
    try:
        # help lines are readable (WCAG 4.5:1), and the paths are in view beside the canvas
        low = [(t, r) for t, r in _contrast(page, ".info-text") if r < 4.5]
        assert not low, low
        _plan_example(page, expect, "three yellow triangles moving up")
        page.evaluate("window.scrollTo(0, 0)")
        expect(page.locator("#trajectory")).to_be_in_viewport(ratio=0.95)
        # a 2,000-character paste stays whole; the counter and Plan say it is too long
        prompt = page.locator("#prompt textarea")
        text = ("two red circles moving left and " * 70)[:1999] + "."
        prompt.fill(text)
        assert len(prompt.input_value()) == 2000
        expect(page.locator("#prompt-count .sv-over")).to_contain_text("too long")
        prompt.press("Enter")
        expect(page.locator("#notice")).to_contain_text("too long (2000 characters")
        # 1,000 characters of subjects: the chips fold those left out; the notice stays small
        prompt.fill(text[: text.rindex(" and ", 0, 1000)])
        prompt.press("Enter")
        expect(page.locator("#chips")).to_contain_text("more subject(s) not planned")
        expect(page.locator("#chips")).not_to_contain_text("0 ×")
        notice = page.locator("#notice .sv-notice")
        box = notice.bounding_box()
        assert box["height"] <= 100, box
        _shot(page, "10-long-prompt")
        page.locator("#notice .sv-close").click()
        expect(notice).to_be_hidden()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        assert not page.evaluate(f"!!document.elementFromPoint({x}, {y}).closest('#notice')")
        # an emoji is no object: a warning, and the shapes model's unknown-word mark
        prompt.fill("a red circle and a 🚀 moving left")
        prompt.press("Enter")
        expect(page.locator("#notice")).to_contain_text("is not a word")
        expect(page.locator("#unknown-words mark")).to_have_text(["🚀"])
        expect(page.locator("#chips")).not_to_contain_text("🚀")
    finally:
        page.close()
