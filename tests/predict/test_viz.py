"""Pictures of results: the overlay, and the interactive page driven in a real headless Chromium."""

import shutil

import numpy as np
import pytest

from sam3ops.inference.result import Result
from sam3ops.predict import viz
from sam3ops.predict.samples import sample_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def photo_and_result():
    photo = sample_image("astronaut")
    masks = np.zeros((3, 512, 512), bool)
    masks[0, 100:300, 150:350] = masks[1, 20:120, 20:200] = masks[2, 300:500, 300:480] = True
    boxes = np.array([[150, 100, 350, 300], [20, 20, 200, 120], [300, 300, 480, 500]], np.float32)
    result = Result("astronaut", ["person", "left hand", "helmet"], masks, boxes,
                    np.array([0.91, 0.55, 0.7], np.float32), ["person", "left hand", "helmet"],
                    np.zeros((512, 512), np.uint16))
    return photo, result


def test_overlay_tints_masks_only(photo_and_result):
    photo, result = photo_and_result
    picture = np.asarray(viz.overlay(photo, result)).astype(int)
    original = np.asarray(photo).astype(int)
    assert picture.shape == original.shape
    assert np.abs(picture[200, 250] - original[200, 250]).sum() > 30  # inside the person mask: tinted
    assert (picture[450, 50] == original[450, 50]).all()  # outside every mask and box: untouched


@pytest.mark.slow
def test_page_toggles_each_prompt_in_a_browser(tmp_path, photo_and_result):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    photo, result = photo_and_result
    page_path = viz.interactive_page(photo, result, tmp_path / "page.html")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 640})
        page.goto(page_path.as_uri())
        page.wait_for_function("document.querySelector('.js-plotly-plot') && "
                               "document.querySelector('.js-plotly-plot').data")
        visible = lambda: page.evaluate(  # noqa: E731
            "document.querySelector('.js-plotly-plot').data.map(t => t.visible === undefined || t.visible === true)")
        assert all(visible())
        page.get_by_text("person (1)").click()
        page.wait_for_timeout(300)
        # traces: photo, then per prompt its mask and its box
        assert visible() == [True, False, False, True, True, True, True]
        page.screenshot(path=str(tmp_path / "person-hidden.png"))
        page.get_by_text("person (1)").click()
        page.wait_for_timeout(300)
        assert all(visible())
        browser.close()
