"""`make notebook`: JupyterLab starts from the Makefile with both notebooks open, seen in a real Chromium."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO_ROOT, VENV_BIN

pytestmark = pytest.mark.slow  # a Jupyter server and a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "make-notebook-test"


def _server_url(process: subprocess.Popen, *, timeout: float = 120) -> str:
    """The server's http://127.0.0.1:PORT/ from its log (it picks a free port)."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if found := re.search(r"(http://127\.0\.0\.1:\d+/)", line):
            return found.group(1)
    raise AssertionError("jupyter lab printed no URL:\n" + "".join(seen[-30:]))


def test_make_notebook_opens_both_notebooks(tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    venv = VENV_BIN.parent
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "run")}
    args = f"--no-browser --allow-root --port=0 --IdentityProvider.token={TOKEN}"
    # -o: this venv is already set up; the test must not reinstall it.
    process = subprocess.Popen(["make", "-s", "-o", f"{venv}/bin/sam3ops", "notebook", f"VENV={venv}",
                                f"NOTEBOOK_ARGS={args}"],
                               cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    try:
        url = _server_url(process)
        assert list((tmp_path / "config" / "lab" / "workspaces").glob("sam3ops*.jupyterlab-workspace"))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{url}?token={TOKEN}")  # the default URL: the workspace the target set
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            tabs = page.locator(".lm-DockPanel .lm-TabBar-tabLabel")
            page.wait_for_function("document.querySelectorAll('.lm-DockPanel .lm-TabBar-tabLabel').length >= 2")
            assert tabs.all_text_contents() == ["sam3_test.ipynb", "benchmark.ipynb"]
            assert "/lab/workspaces/sam3ops" in page.url
            browser.close()
    finally:
        _stop(process.pid)
        process.wait(timeout=30)


def _stop(group: int) -> None:
    """SIGTERM make's process group (make, jupyter lab), then SIGKILL whatever is left after 20 s."""
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(group, signal.SIGKILL)
