"""End to end in headless Chromium: prompt -> plan -> drag a box -> tiny generation -> results.

Starts the real app (``python app.py``) on a free port and drives it with Playwright through
Debian's Chromium (``apt-get install chromium``). Screenshots of every stage land in
``tests/artifacts/`` for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
PROMPT = "a cat walking to the right and a dog jumping on the left"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} missing: apt-get install chromium chromium-driver",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    """The real app in a subprocess, offline, on a free localhost port."""
    port = _free_port()
    env = dict(
        os.environ,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "app.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(
                f"app exited with {proc.returncode}: " + (ARTIFACTS / "app.log").read_text()[-2000:]
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail("app did not start within 120 s")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _download_json(page, locator) -> dict:
    with page.expect_download(timeout=30_000) as info:
        locator.click()
    return json.loads(Path(info.value.path()).read_text())


def _export_when(page, ready, timeout_s: float = 60.0) -> dict:
    """The exported plan once ``ready(plan)`` holds: the export follows edits asynchronously,
    and a loaded machine can take seconds to catch up."""
    deadline = time.monotonic() + timeout_s
    while True:
        plan = _download_json(page, page.locator("#export"))
        if ready(plan) or time.monotonic() > deadline:
            return plan
        page.wait_for_timeout(500)


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def _canvas_map(page, image_size: tuple[int, int]):
    """Frame fractions -> screen pixels on the canvas (the image is drawn scaled, centred)."""
    bb = page.locator("#canvas canvas").first.bounding_box()
    iw, ih = image_size
    scale = min(bb["width"] / iw, bb["height"] / ih)
    ox = bb["x"] + (bb["width"] - iw * scale) / 2
    oy = bb["y"] + (bb["height"] - ih * scale) / 2
    return (lambda x, y: (ox + x * iw * scale, oy + y * ih * scale)), iw * scale, ih * scale


def _mouse_drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def _drag_box(page, box: list[float], dx: float, dy: float, image_size: tuple[int, int]):
    """Real mouse drag of the box (frame fractions) by (dx, dy) screen pixels on the canvas.

    Returns the move in frame fractions, from the canvas's drawn image scale."""
    page.locator('#canvas button[aria-label="Drag boxes"]').click()  # the hand tool
    # a frame change redraws the canvas: let it settle, or a loaded machine drags the old one
    page.wait_for_timeout(400)
    to_screen, sw, sh = _canvas_map(page, image_size)
    cx, cy = to_screen((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    _mouse_drag(page, (cx, cy), (cx + dx, cy + dy))
    return dx / sw, dy / sh


def test_studio_end_to_end(app_url):
    from playwright.sync_api import expect, sync_playwright

    from starvid import DEFAULT_BACKBONE
    from starvid.backbones import BACKBONES
    from starvid.ui import canvas_size

    first_step = BACKBONES[DEFAULT_BACKBONE].defaults.step_size
    assert first_step != 0.3  # the check below must tell the backbone's value from the generic

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.set_default_timeout(60_000)
        expect.set_options(timeout=15_000)  # a busy 2-core CI box is slow to answer
        try:
            page.goto(app_url)
            # the default backbone's own guidance step (shapes: 0.05, see backbones.py)
            expect(page.locator("#step-size input[type=number]")).to_have_value(f"{first_step:g}")
            # bad input first: an empty prompt gives a visible message, not a traceback
            page.locator("#plan-btn").click()
            expect(page.locator("#notice")).to_contain_text("prompt is empty")
            page.locator("#prompt textarea").fill("running quickly")
            page.locator("#plan-btn").click()
            expect(page.locator("#notice")).to_contain_text("no noun")

            # 1. prompt -> parse chips and a plan
            page.locator("#prompt textarea").fill(PROMPT)
            page.get_by_label("heuristic").check()
            _set_number(page, "frames", 4)
            page.locator("#plan-btn").click()
            expect(page.locator("#notice")).to_contain_text("Planned 2 object(s)")
            expect(page.locator("#chips")).to_contain_text("1 × cat")
            expect(page.locator("#chips")).to_contain_text("jump")
            expect(page.locator("#trajectory .js-plotly-plot")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "1-plan.png"), full_page=True)
            planned = _download_json(page, page.locator("#export"))
            assert planned["frames"] == 4
            cat = next(o for o in planned["objects"] if o["id"] == "cat-1")

            # 2. drag cat-1 at frame 0 on the canvas with the real mouse
            size = canvas_size((64, 64))
            mx, my = _drag_box(page, cat["boxes"][0], 70, 45, size)
            expect(page.locator("#notice")).to_contain_text("Pinned cat-1 at frame 0")
            page.screenshot(path=str(ARTIFACTS / "2-dragged.png"), full_page=True)
            edited = _download_json(page, page.locator("#export"))
            new_box = next(o for o in edited["objects"] if o["id"] == "cat-1")["boxes"][0]
            want = [
                cat["boxes"][0][0] + mx,
                cat["boxes"][0][1] + my,
                cat["boxes"][0][2] + mx,
                cat["boxes"][0][3] + my,
            ]
            assert new_box == pytest.approx(want, abs=0.02)

            # at the last frame, pull dog-1 left: only frames after its previous keyframe move
            _set_number(page, "frame", 3)
            expect(page.locator("#keyframes")).to_contain_text("dog-1 (jump): keyframes 0, 1, 2, 3")
            dog = next(o for o in planned["objects"] if o["id"] == "dog-1")
            dx, _ = _drag_box(page, dog["boxes"][3], -50, 0, size)
            expect(page.locator("#notice")).to_contain_text("Pinned dog-1 at frame 3")
            edited = _download_json(page, page.locator("#export"))
            dog_boxes = next(o for o in edited["objects"] if o["id"] == "dog-1")["boxes"]
            assert dog_boxes[3][0] == pytest.approx(dog["boxes"][3][0] + dx, abs=0.02)
            assert dog_boxes[0] == pytest.approx(dog["boxes"][0], abs=1e-6)
            _set_number(page, "frame", 0)

            # add a dog with the box tool (labelled in the canvas's dialog), then delete it
            page.locator('#canvas button[aria-label="Create box"]').click()
            # the frame change above redraws the canvas: measure it once it has settled
            page.locator("#canvas canvas").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            to_screen, sw, _ = _canvas_map(page, size)
            assert sw > 100, "canvas not laid out"
            _mouse_drag(page, to_screen(0.72, 0.06), to_screen(0.92, 0.26))
            dialog = page.locator("#canvas #model-box-edit")
            dialog.locator('input[aria-label="Label"]').click()
            page.get_by_role("option", name="dog", exact=True).click()
            dialog.get_by_role("button", name="OK").click()
            expect(page.locator("#notice")).to_contain_text("Added dog-2")
            expect(page.locator("#keyframes")).to_contain_text("dog-2")
            page.screenshot(path=str(ARTIFACTS / "2b-added.png"), full_page=True)
            page.locator('#canvas button[aria-label="Drag boxes"]').click()
            page.mouse.click(*to_screen(0.82, 0.16))
            page.locator('#canvas button[aria-label="Remove box"]').click()
            expect(page.locator("#notice")).to_contain_text("Removed dog-2")
            expect(page.locator("#keyframes")).not_to_contain_text("dog-2")

            # a malformed plan upload is refused with a message; the edited plan stays
            bad = ARTIFACTS / "bad-plan.json"
            bad.write_text('{"frames": 4, "objects": [{"id": "x", "noun": "cat", "subject": 0}]}')
            with page.expect_file_chooser() as chooser:
                page.locator("#import").click()
            chooser.value.set_files(str(bad))
            expect(page.locator("#notice")).to_contain_text("invalid plan")
            expect(page.locator("#notice")).to_contain_text("unchanged")
            assert _download_json(page, page.locator("#export")) == edited

            # 3. tiny generation with baseline, kept short
            _set_number(page, "steps", 3)
            _set_number(page, "guidance-steps", 1)
            _set_number(page, "iterations", 2)
            save_memory = page.locator("#save-memory input")
            expect(save_memory).not_to_be_checked()  # the shapes model's default
            save_memory.check()
            page.locator("#generate").click()
            expect(page.locator("#progress")).to_contain_text("guided run", timeout=120_000)
            expect(page.locator("#heatmap .js-plotly-plot")).to_be_attached()  # live, mid-run
            page.screenshot(path=str(ARTIFACTS / "3-generating.png"), full_page=True)
            expect(page.locator("#status")).to_contain_text("Done", timeout=240_000)
            expect(page.locator("#status")).to_contain_text("--from-report report.json")
            for vid in ("#video-guided video", "#video-baseline video"):
                expect(page.locator(vid)).to_have_attribute("src", re.compile(r"\.mp4"))
            expect(page.locator("#heatmap .js-plotly-plot .hm")).to_have_count(2)  # both runs
            downloads = page.locator("#downloads")
            # the run folder the CLI writes, file for file
            for name in (
                "guided.mp4",
                "baseline.mp4",
                "side_by_side.mp4",
                "plan.json",
                "report.json",
                "maps.npz",
            ):
                expect(downloads.locator(f'a[href$="/{name}"]')).to_have_count(1)
            # the verb's map, chosen like a user would
            page.locator("#word input").click()
            page.get_by_role("option", name="walking").click()
            expect(page.locator("#heatmap")).to_contain_text("'walking' at frame 0")
            page.locator("#heatmap").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "4-results.png"), full_page=True)

            # 4. the run used the moved box
            report = _download_json(page, downloads.locator('a[href$="/report.json"]'))
            used = next(o for o in report["plan"]["objects"] if o["id"] == "cat-1")["boxes"][0]
            assert used == pytest.approx(new_box, abs=1e-6)
            assert used != pytest.approx(cat["boxes"][0], abs=0.01)
            assert {o["id"] for o in report["objects"]} == {"cat-1", "dog-1"}
            assert "baseline" in report["timing_s"]
            assert report["settings"]["checkpointing"] is True
            # 5. cancel a second, longer run: a visible message, the results and plan stay
            _set_number(page, "steps", 12)
            page.locator("#generate").click()
            expect(page.locator("#progress")).to_contain_text("guided run: step", timeout=60_000)
            page.locator("#cancel").click()
            expect(page.locator("#status")).to_contain_text("cancelled", timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "5-cancelled.png"), full_page=True)
            expect(page.locator("#video-guided video")).to_have_attribute("src", re.compile("mp4"))
            assert _download_json(page, page.locator("#export")) == edited

            # 6. another backbone brings its own defaults; the edited plan is resampled to its
            # 8 frames, its first and last boxes kept
            page.locator("#backbone input").click()
            page.get_by_role("option", name="tiny", exact=True).click()
            expect(page.locator("#steps input[type=number]")).to_have_value("10")
            expect(page.locator("#step-size input[type=number]")).to_have_value("0.3")
            expect(page.locator("#frames input[type=number]")).to_have_value("8")
            moved = _export_when(page, lambda plan: plan["frames"] == 8)
            assert moved["frames"] == 8
            for new, old in zip(moved["objects"], edited["objects"], strict=True):
                assert new["boxes"][0] == pytest.approx(old["boxes"][0], abs=1e-6)
                assert new["boxes"][-1] == pytest.approx(old["boxes"][-1], abs=1e-6)
        finally:
            page.screenshot(path=str(ARTIFACTS / "last.png"), full_page=True)
            browser.close()
