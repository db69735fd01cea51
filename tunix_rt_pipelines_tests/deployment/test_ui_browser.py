"""The Dagster UI as a person sees it, in headless Chromium driven by Playwright.

After the main job, three pages of the served home folder: the leaderboard asset with its table,
the lineage of the registered model version, and the training run's logs (event log and the
Pipes worker's stdout). Screenshots go to ``$TUNIX_RT_UI_SCREENSHOTS`` when set, else to pytest's
tmp folder.

Needs the ``playwright`` Python package (its driver is in the wheel) and a Chromium binary:
Debian's ``chromium`` package, or ``TUNIX_RT_CHROMIUM`` naming another. ``playwright install
chromium`` downloads its own build from a CDN, which machines without internet cannot reach.
Without either the test is skipped and says which is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

from tunix_rt_pipelines_tests.deployment.tiny_graph import TINY

VIEWPORT = {"width": 1600, "height": 1000}
CHROMIUM_ENV = "TUNIX_RT_CHROMIUM"
SCREENSHOTS_ENV = "TUNIX_RT_UI_SCREENSHOTS"
TIMEOUT_MS = 30_000


def chromium_executable() -> str | None:
    candidates = [os.environ.get(CHROMIUM_ENV), "/usr/lib/chromium/chromium",  # Debian's binary, without its wrapper
                  shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing() -> str | None:
    """Why the browser cannot run here, or None. Checked at collection: a skip costs no deployment."""
    try:
        has_playwright = importlib.util.find_spec("playwright.sync_api") is not None
    except ModuleNotFoundError:
        has_playwright = False
    if not has_playwright:
        return "the playwright package is not installed (pip install playwright==1.65.2, the dev extra)"
    if chromium_executable() is None:
        return (f"no Chromium binary: install Debian's (apt-get install chromium, scripts/install_chromium.sh) "
                f"or set {CHROMIUM_ENV}; `playwright install chromium` needs network access to a CDN")
    return None


pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, deployment):  # noqa: ANN001, ANN201
    # Dagster's first-visit "Join the Dagster community" dialog opens a second after any page loads and
    # covers it (closing open menus). Its Skip button records on the server that it was seen; do the same.
    deployment.gql("mutation { setNuxSeen }")
    assert deployment.gql("{ shouldShowNux }")["shouldShowNux"] is False
    context = browser.new_context(viewport=VIEWPORT, base_url=deployment.url)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:  # noqa: ANN001
    folder = Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else tmp_path_factory.mktemp("ui")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str) -> Path:  # noqa: ANN001
    """A screenshot that shows something: a PNG of the viewport's size with more than a few colours."""
    from PIL import Image

    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000, path
    with Image.open(path) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50, f"{path}: {len(colours)} colours, a blank page?"
    return path


def checkpoint_run_id(deployment) -> str:  # noqa: ANN001
    data = deployment.gql('{ assetOrError(assetKey: {path: ["checkpoint", "%s"]}) '
                          '{ ... on Asset { assetMaterializations(limit: 1) { runId } } } }' % TINY)
    (materialization,) = data["assetOrError"]["assetMaterializations"]
    return materialization["runId"]


def test_leaderboard_asset_page_shows_the_ranked_table(page, screenshots):
    from playwright.sync_api import expect

    page.goto("/assets/leaderboard")
    table = page.locator("table").filter(has_text=f"{TINY}/trained")
    expect(table.first).to_be_visible()
    for text in ("rank", "label", "primary_score", f"{TINY}/base", f"{TINY}/trained"):
        expect(table.first.get_by_text(text, exact=True).first).to_be_visible()
    table.first.scroll_into_view_if_needed()
    shoot(page, screenshots, "leaderboard")


def test_model_version_lineage_shows_every_stage_back_to_the_traces(page, screenshots):
    from playwright.sync_api import expect

    # Upstream, deep enough for every stage; on load the graph is fitted to the viewport.
    page.goto(f"/assets/model_version/{TINY}?view=lineage&lineageScope=upstream&lineageDepth=10")
    for group in ("traces", "datasets", "training", "evalsets", "inference", "evaluation", "registry"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    # Nodes are labelled by the last part of their key (long names are shortened in the middle).
    for node in ("dev_reasoning", "dev_reasoning_sft", "eval_v1", "trained", re.compile(r"^ingested_tra.*file$"),
                 re.compile(r"^synthe.*arithmetic$")):
        expect(page.get_by_text(node, exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="model_version")).to_be_visible()  # the breadcrumb of the asset shown
    shoot(page, screenshots, "lineage")


def test_training_run_logs_show_the_workers_step_lines(page, deployment, screenshots):
    from playwright.sync_api import expect

    run_id = checkpoint_run_id(deployment)
    assert run_id == deployment.main_run_id
    step = f"checkpoint__{TINY}"
    page.goto(f"/runs/{run_id}?logs=step%3A{step}")
    # The event log: the worker's lines arrive through Pipes as the step's log messages.
    line = page.get_by_text(re.compile(r"^step 20/20 loss \d+\.\d+")).first
    line.scroll_into_view_if_needed()
    expect(line).to_be_visible()
    shoot(page, screenshots, "run_events")
    # The raw stdout of the step (the worker prints the same lines): the log viewer's stdout tab.
    page.get_by_role("button", name="stdout").click()
    page.get_by_placeholder("Select a step…").click()
    page.get_by_text(re.compile(r"steps?\)$")).first.click()  # the one compute log file of an in-process run
    expect(page.get_by_text(re.compile(r"step 20/20 loss \d+\.\d+")).first).to_be_visible()
    shoot(page, screenshots, "run_stdout")
