"""The notebooks where students use them: JupyterLab on 127.0.0.1 driven by headless Chromium (Playwright).

The server runs in smoke mode on the test data, in a copy of notebooks/ (so autosave never touches the committed
notebooks), with the project's kernel. Each step saves a screenshot under smoke/browser/ (or
$CV_HELPERS_BROWSER_SHOTS); a failing step names itself and its screenshot. Without Chromium the tests are skipped
with the command that installs it; with CV_HELPERS_REQUIRE_RESOURCES=1 (CI) they fail instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

from cv_helpers.config import REPO_ROOT, runs_dir

CHROMIUM = Path(os.environ.get("CV_HELPERS_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("CV_HELPERS_BROWSER_SHOTS", REPO_ROOT / "smoke" / "browser"))
INSTALL_HINT = "apt-get install chromium && pip install -e '.[dev]'"

try:
    from playwright.sync_api import Page, TimeoutError as PlaywrightTimeout, expect, sync_playwright
except ImportError:
    sync_playwright = None
_missing = ("Playwright is not installed" if sync_playwright is None else
            f"Chromium is not at {CHROMIUM}" if not CHROMIUM.is_file() else "")
pytestmark = pytest.mark.needs(_missing, f"to run the browser tests: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: `url` (a notebook's page: url.format(name)) and `root` (its notebooks/ and report/)."""

    url: str
    root: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """Starts JupyterLab on a copy of the notebooks; yields where it is; stops it afterwards."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO_ROOT / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}       # the inline backend, as for a student
    # The session's private runs folder (conftest), so the notebooks' nbval tests reuse the smoke runs trained here;
    # its own report folder.
    env["CV_HELPERS_REPORT"] = str(root / "report")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / "workspaces")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / "settings")               # fresh settings, no news pop-up
    news = root / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                               "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={root / 'notebooks'}"],
                              env=env, stdout=subprocess.DEVNULL, stderr=(root / "server.log").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError(f"JupyterLab did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield Lab(f"{base}/lab/tree/{{}}?token={token}&reset", root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture()
def page(lab, request) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(60_000)
        tab.lab_url, tab.lab_root = lab.url, lab.root
        tab.shot_prefix = request.node.name.removeprefix("test_")[:32]
        yield tab
        browser.close()


@contextlib.contextmanager
def step(page: Page, name: str) -> Iterator[None]:
    """Runs one step; saves a screenshot after it, and on failure names the step and the screenshot."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{page.shot_prefix}-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"
    try:
        yield
    except Exception as err:
        page.screenshot(path=str(shot), full_page=True)
        shot.with_suffix(".txt").write_text(page.locator(".jp-Notebook").first.inner_text())
        raise AssertionError(f"step '{name}' failed ({type(err).__name__}: {str(err).splitlines()[0]}); "
                             f"screenshot {shot}, page text {shot.with_suffix('.txt')}") from None
    page.screenshot(path=str(shot), full_page=True)


def open_notebook(page: Page, name: str) -> None:
    page.goto(page.lab_url.format(name))
    page.locator(".jp-Notebook").first.wait_for()
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_visible(timeout=90_000)


def run_menu(page: Page, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def run_all_cells(page: Page) -> None:
    """Run > Run All Cells, until the first code cell is queued or has run. On a slow machine the kernel can still
    be starting when the notebook already says idle, and the first request is then lost (every prompt stays [ ])."""
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(6):
        try:
            run_menu(page, "Run All Cells")
            expect(first_prompt).not_to_have_text(re.compile(r"^\s*\[ \]:\s*$"), timeout=30_000)
            return
        except (AssertionError, PlaywrightTimeout):   # the menu did not open yet, or the request was lost
            page.keyboard.press("Escape")
            continue
    raise AssertionError("Run All Cells queued no cell in six tries over 3 minutes (the first prompt stays [ ])")


def run_first_cells(page: Page, count: int) -> None:
    """Selects the first cell and runs `count` cells with Shift+Enter, again until the last of them (a code cell) is
    queued or has run (a kernel still starting can lose the first requests, as with `run_all_cells`)."""
    last_prompt = page.locator(".jp-Cell").nth(count - 1).locator(".jp-InputPrompt")
    for _ in range(6):
        page.locator(".jp-Cell").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Escape")
        for _ in range(count):
            page.keyboard.press("Shift+Enter")
        try:
            expect(last_prompt).not_to_have_text(re.compile(r"^\s*\[ \]:\s*$"), timeout=30_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"Shift+Enter ran no cell in six tries over 3 minutes (cell {count} stays [ ])")


def assert_widgets_rendered(page: Page, expected: int) -> None:
    """Waits until `expected` widget views render and none says 'Error displaying widget' or 'Loading widget...'."""
    expect(page.locator(".jupyter-widgets").first).to_be_visible(timeout=60_000)
    deadline = time.monotonic() + 30
    while page.get_by_text("Loading widget...").count() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert page.get_by_text("Error displaying widget").count() == 0, "a widget shows 'Error displaying widget'"
    assert page.get_by_text("Loading widget...").count() == 0, "a widget is still 'Loading widget...' after 30 s"
    assert page.locator(".jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-box").count() >= expected


def saved_code_cells(path: Path, timeout: float = 60) -> list:
    """Returns the code cells of the notebook saved at `path` once every one of them has run (waits for the save)."""
    deadline = time.monotonic() + timeout
    while True:
        cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        if all(cell.execution_count for cell in cells) or time.monotonic() > deadline:
            assert all(cell.execution_count for cell in cells), f"{path.name} was not saved with every cell run"
            return cells
        time.sleep(0.5)


def assert_no_traceback(page: Page) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    assert not [t for t in texts if "Traceback" in t or "Error" in t], texts


def test_the_class_browser_slider_changes_the_images(page):
    with step(page, "open Q1.1"):
        open_notebook(page, "Q1_1_cifar100_visualisation.ipynb")
    browser_cell = page.locator(".jp-CodeCell", has_text="widgets.interact(show_classes")
    with step(page, "run all cells"):
        run_all_cells(page)
        slider = browser_cell.locator(".widget-slider").first
        expect(slider).to_be_visible(timeout=120_000)
        image = browser_cell.locator(".jp-OutputArea-output img").last
        expect(image).to_be_visible(timeout=60_000)
        before = image.get_attribute("src")
    with step(page, "move the first-class slider with the keyboard"):
        slider.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowRight")
        expect(browser_cell.locator(".widget-readout").first).to_have_text("6")
        expect(browser_cell.locator(".jp-OutputArea-output img").last).not_to_have_attribute("src", before,
                                                                                             timeout=60_000)
        assert_no_traceback(page)


def _widget(page: Page, label: str):
    return page.locator(".jupyter-widgets.widget-inline-hbox", has=page.locator(".widget-label", has_text=label))


PANEL_CELL = 3          # Q1.4's cells: setup, the section's prose, "Try it yourself", then the panel


def test_the_training_panel_trains_with_the_settings_set_in_the_page_and_refuses_bad_ones(page):
    with step(page, "open Q1.4"):
        open_notebook(page, "Q1_4_tuning.ipynb")
    with step(page, "run the panel cell"):
        run_first_cells(page, PANEL_CELL + 1)
        expect(page.get_by_role("button", name="Train")).to_be_visible(timeout=120_000)
        assert_widgets_rendered(page, 10)
        # In smoke mode the cell presses Train once itself (the nbval tests' path); wait for that run to end.
        expect(page.get_by_text(re.compile(r"validation accuracy after 1 epochs: "))).to_be_visible(timeout=180_000)
    with step(page, "set 2 epochs, the Adam optimizer and a run name"):
        _widget(page, "epochs").locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        expect(_widget(page, "epochs").locator(".widget-readout")).to_have_text("2")
        _widget(page, "optimizer").locator("select").select_option("adam")
        _widget(page, "save as run").locator("input").fill("panel-adam")
    with step(page, "press Train and watch the progress bar, the curves and the result"):
        page.get_by_role("button", name="Train").click()
        panel = page.locator(".jp-Cell").nth(PANEL_CELL)
        expect(panel.locator(".progress-bar").first).to_be_visible(timeout=60_000)
        expect(panel.get_by_text(re.compile(r"validation accuracy after 2 epochs: \d+\.\d\d %"))).to_be_visible(
            timeout=180_000)
        expect(panel.get_by_text(re.compile(r"^training:"))).to_be_visible()
        expect(panel.locator(".jp-OutputArea-output img").first).to_be_visible()        # the redrawn curves
    with step(page, "the settings chosen in the page are the run's settings"):
        saved = json.loads((runs_dir() / "smoke-panel-adam" / "config.json").read_text())
        assert (saved["optimizer"], saved["epochs"], saved["validation"]) == ("adam", 2, True), saved
    with step(page, "a run name outside the runs folder is refused with one line"):
        _widget(page, "save as run").locator("input").fill("../escape")
        page.get_by_role("button", name="Train").click()
        refusal = page.get_by_text(re.compile(r"^error: run name '\.\./escape' is not allowed; use letters"))
        expect(refusal).to_be_visible(timeout=60_000)
        assert refusal.inner_text().strip().count("\n") == 0
        assert_no_traceback(page)


def test_the_q3_notebook_runs_top_to_bottom_through_the_ui(page):
    with step(page, "open Q3"):
        open_notebook(page, "Q3_best_recipe.ipynb")
    with step(page, "run all cells and wait for the last output"):
        run_all_cells(page)
        last = page.locator(".jp-Cell.jp-CodeCell").last
        expect(last.locator(".jp-OutputArea-output")).not_to_have_count(0, timeout=300_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_visible(
            timeout=120_000)
    with step(page, "no cell shows an error"):
        assert_no_traceback(page)
        prompts = [p.strip() for p in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]
        assert not {"[*]:", "[ ]:"} & set(prompts), f"cells not run or still running: {prompts}"
    with step(page, "save, and the saved notebook has every cell run and no error"):
        page.locator(".jp-Cell").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Escape")
        page.keyboard.press("Control+s")
        cells = saved_code_cells(page.lab_root / "notebooks" / "Q3_best_recipe.ipynb")
        errors = [output for cell in cells for output in cell.outputs if output.output_type == "error"]
        assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
        assert not [o for c in cells for o in c.outputs if "Traceback" in o.get("text", "")]
