"""The Studio's attention debugger in headless Chromium (issue 26): after a run that recorded
every token and layer, each view opens, draws and says what it shows; the opacity slider
changes the drawn image; a view saves as PNG. Screenshots land in ``tests/artifacts/``."""

from __future__ import annotations

import re

import pytest
from test_ui_e2e import (  # the real app, Chromium and the page helpers
    ARTIFACTS,
    _choose,
    _page,
    _plan_example,
    _set_number,
    app_url,  # noqa: F401 - a fixture
    browser,  # noqa: F401 - a fixture
    chromium,  # noqa: F401 - a fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# view label -> a part of the title the view must show
TITLES = {
    "Map over the frame, and alone": "at frame 1 (mean of the guidance layers",
    "Frames x steps": "over frames x steps (orange: guidance window, steps 0-1)",
    "All subjects' words at one frame": "words at frame 1",
    "Each layer alone": "each layer alone",
    "Each head of one layer": "per head",
    "Guided, baseline, difference": "guided, baseline, guided - baseline",
    "Prompt shaded by in-box share": "share of attention in its boxes",
    "Prompt shaded by entropy": "entropy of its map",
    "When the maps settle (steps)": "changes from the step before",
    "Animation over the frames": "across the 4 frames",
}


def _image_href(page) -> str:
    """The data URI of the figure's image (plotly draws go.Image as an SVG <image>)."""
    image = page.locator("#debug-plot .js-plotly-plot image").first
    return image.get_attribute("href") or image.get_attribute("xlink:href") or ""


def test_every_debugger_view_draws_after_a_run(app_url, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser, app_url)
    try:
        _plan_example(page, expect, "two red circles moving left and a blue square", frames=4)
        _set_number(page, "steps", 4)
        page.locator("#more-settings").get_by_text("More settings").click()
        _set_number(page, "guidance-steps", 2)
        _choose(page, "record-attention", "full_heads")
        page.locator("#generate").click()
        expect(page.locator("#progress")).to_contain_text("Done", timeout=240_000)
        page.locator("#notice .sv-close").click()  # the notice bar would cover the figure
        page.get_by_role("tab", name="Attention").click()
        page.locator("#debug-note").scroll_into_view_if_needed()
        expect(page.locator("#debug-note")).to_contain_text("Recorded:")
        _set_number(page, "debug-frame", 1)
        for label, title in TITLES.items():
            _choose(page, "debug-view", label)
            plot = page.locator("#debug-plot")
            expect(plot.locator(".gtitle")).to_contain_text(title)
            expect(plot.locator(".js-plotly-plot image")).to_have_count(1)
            assert len(_image_href(page)) > 1000, label  # a drawn PNG, not an empty image
            slug = re.sub(r"\W+", "-", label.lower()).strip("-")
            plot.screenshot(path=str(ARTIFACTS / f"10-debugger-{slug}.png"))
        # the opacity slider changes the map over the frame
        _choose(page, "debug-view", "Map over the frame, and alone")
        expect(page.locator("#debug-plot .gtitle")).to_contain_text("at frame 1")
        before = _image_href(page)
        _set_number(page, "debug-opacity", 0.1)
        expect(page.locator("#debug-plot image")).not_to_have_attribute("href", before)
        # raw tokens: the end token, in one layer
        _choose(page, "debug-token", "#11 <end>")
        expect(page.locator("#debug-plot .gtitle")).to_contain_text("'<end> (token 11)' at frame 1")
        page.locator("#debug-save").click()
        expect(page.locator("#debug-saved a")).to_have_attribute(
            "href", re.compile(r"overlay-token11\.png")
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "10-debugger.png"), full_page=True)
        # every Inspect tab stays in the tab bar (none pushed into its overflow menu)
        for tab in ("Settings", "Videos", "Attention", "In-box", "Losses", "Files"):
            expect(page.get_by_role("tab", name=tab)).to_be_visible()
        # the README's picture: the tab with the frames x steps view
        _choose(page, "debug-view", "Frames x steps")
        expect(page.locator("#debug-plot .gtitle")).to_contain_text("over frames x steps")
        top = page.locator("#debug-note").bounding_box()
        bottom = page.locator("#debug-plot").bounding_box()
        scroll = page.evaluate("window.scrollY")  # boxes are in the window, the clip on the page
        clip = {"x": bottom["x"] - 8, "y": top["y"] + scroll - 8, "width": bottom["width"] + 16,
                "height": bottom["y"] + bottom["height"] - top["y"] + 16}  # fmt: skip
        page.screenshot(path=str(ARTIFACTS / "10-debugger-tab.png"), clip=clip, full_page=True)
    finally:
        page.close()
