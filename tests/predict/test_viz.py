"""Pictures of results: the overlay, and the interactive page driven in a real headless Chromium."""

import contextlib
import shutil

import numpy as np
import pytest

from sam3ops.inference.result import Result
from sam3ops.predict import viz
from sam3ops.predict.samples import sample_image
from tests.support.pictures import banner_rows, has_banner_text

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def opened_page(path):
    """``path`` open in headless Chromium, once plotly has drawn its figure."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 640})
        page.goto(path.as_uri())
        page.wait_for_function("document.querySelector('.js-plotly-plot') && "
                               "document.querySelector('.js-plotly-plot').data")
        try:
            yield page
        finally:
            browser.close()


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


def test_random_weights_put_a_banner_on_the_picture_itself(photo_and_result):
    photo, result = photo_and_result
    plain = np.asarray(viz.overlay(photo, result))
    marked = np.asarray(viz.overlay(photo, result, random_weights=True))
    assert banner_rows(plain) == 0
    rows = banner_rows(marked)
    assert 20 <= rows < 100 and has_banner_text(marked, rows)  # 512 px wide: a bar a reader cannot miss
    assert (marked[rows + 5:] == plain[rows + 5:]).all()  # below the bar the picture is the same
    nothing = Result("small", ["cat"], np.zeros((0, 120, 160), bool), np.zeros((0, 4), np.float32),
                     np.zeros(0, np.float32), [], np.zeros((120, 160), np.uint16))
    small = np.asarray(viz.overlay(photo.resize((160, 120)), nothing, random_weights=True))
    assert banner_rows(small) >= 10 and has_banner_text(small, banner_rows(small))


def test_random_weights_title_the_page(tmp_path, photo_and_result):
    photo, result = photo_and_result
    marked = viz.interactive_page(photo, result, tmp_path / "r.html", random_weights=True).read_text()
    plain = viz.interactive_page(photo, result, tmp_path / "p.html").read_text()
    assert f"<title>{viz.RANDOM_BANNER}</title>" in marked and viz.RANDOM_BANNER in marked.split("<body>")[1]
    assert viz.RANDOM_BANNER not in plain


@pytest.mark.slow
def test_page_toggles_each_prompt_in_a_browser(tmp_path, photo_and_result):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    photo, result = photo_and_result
    page_path = viz.interactive_page(photo, result, tmp_path / "page.html")
    with opened_page(page_path) as page:
        visible = lambda: page.evaluate(  # noqa: E731
            "document.querySelector('.js-plotly-plot').data.map(t => t.visible === undefined || t.visible === true)")
        assert all(visible())
        assert page.title() == ""  # real weights: no banner
        page.get_by_text("person (1)").click()
        page.wait_for_timeout(300)
        # traces: photo, then per prompt its mask and its box
        assert visible() == [True, False, False, True, True, True, True]
        page.screenshot(path=str(tmp_path / "person-hidden.png"))
        page.get_by_text("person (1)").click()
        page.wait_for_timeout(300)
        assert all(visible())


@pytest.mark.slow
def test_random_weights_page_shows_the_banner_and_masks_in_a_browser(tmp_path, photo_and_result):
    """As a person sees it: a screenshot of the page has the red banner title and tinted masks."""
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from PIL import Image
    photo, result = photo_and_result
    page_path = viz.interactive_page(photo, result, tmp_path / "page.html", random_weights=True)
    with opened_page(page_path) as page:
        page.wait_for_timeout(300)
        assert page.title() == viz.RANDOM_BANNER
        assert viz.RANDOM_BANNER in page.locator(".gtitle").text_content()  # an SVG text node
        page.screenshot(path=str(tmp_path / "shot.png"))
    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")).astype(int)
    red_text = (np.abs(shot[:80] - viz.BANNER_RGB).sum(axis=-1) < 60).sum()
    assert red_text > 200  # the banner's red letters above the picture
    blue = np.abs(shot - viz._rgb(viz.PALETTE[0])).sum(axis=-1) < 120  # the person mask, tinted at half alpha
    assert blue.sum() > 0 and (np.abs(shot - (255, 255, 255)).sum(axis=-1) > 0).sum() > 100_000
