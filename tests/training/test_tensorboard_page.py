"""TensorBoard's own pages show a `--log tensorboard` run, offline: TensorBoard's server on
127.0.0.1 (tests/servers.py) over the run folder's tensorboard/, its pages opened in headless
Chromium that can reach 127.0.0.1 only (tests/browser.py).

The Time Series page is Angular, so its DOM after the scripts ran holds what it shows: a
group per tag prefix and the last point of each visible scalar card. The Scalars page draws
its charts in SVG, inside shadow roots the DOM dump leaves out: it is checked, and kept for
the docs, as a screenshot.
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import browser
import servers
from cifar_engine.cli.main import main
from fakes import FAST_TRAIN, write_learnable_tree
from logged import read_events

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "tensorboard-scalars.png"
TENSORBOARD = Path(sys.executable).parent / "tensorboard"
RUN_RGB = (0xFF, 0x70, 0x43)  # the first run's colour in TensorBoard's palette
SIDEBAR = 310  # pixels: the Scalars page's settings and runs column, left of the charts
# The Scalars page's settings in its URL: raw points (no smoothing), the tag groups the docs
# show.
SCALARS_PAGE = "#scalars&_smoothingWeight=0&tagFilter=%5E(acc%7Closs)%2F"
LOGDIR = Path("runs", "tiny", "tensorboard")  # as the docs' command gives it, relative


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """(folder, its LOGDIR: the tensorboard/ folder of a tiny run trained there with
    --log tensorboard)."""
    root = tmp_path_factory.mktemp("tensorboard-page")
    images = write_learnable_tree(root / "images")
    code = main(["train", "--data", str(images), "--out", str(root / LOGDIR.parent),
                 *FAST_TRAIN, "--cycles", "3", "--eval-every", "3", "--log", "tensorboard"])
    assert code == 0
    return root, LOGDIR


def _groups(dom):
    """The Time Series page's card groups (set of str)."""
    return set(re.findall(r'class="group-title" title="([^"]*)"', dom))


def _card_cells(dom, tag):
    """The texts of the cells of the scalar card of `tag` (its data table: run, smoothed,
    value, step, ...)."""
    cards = re.split(r"<scalar-card-component", dom)[1:]
    (card,) = [c for c in cards if f'title="{tag}"' in c]
    return [text.strip() for text in re.findall(r'class="cell[^"]*">([^<]*)<', card)]


def _numbers(cells):
    """The cells that are plain numbers, as floats."""
    return [float(text) for text in cells if re.fullmatch(r"-?\d+(\.\d+)?", text)]


def _run_pixels(png):
    """How many pixels right of the sidebar have (nearly) the run's colour."""
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)[:, SIDEBAR:]
    return int((np.abs(rgb - np.array(RUN_RGB)).sum(axis=-1) <= 30).sum())


@pytest.mark.slow
def test_tensorboard_shows_the_runs_scalars_offline(logged_run, tmp_path):
    folder, logdir = logged_run
    events = read_events(folder / logdir)
    tags = events.Tags()
    command = [TENSORBOARD, "--logdir", logdir, "--host", "127.0.0.1", "--port", "{port}"]
    with servers.running(command, "data/runs", cwd=folder,
                         ready=lambda body: json.loads(body) != []) as url:
        dom = browser.dump_dom(url + "#timeseries", budget_ms=15_000)
        shot = browser.screenshot(url + SCALARS_PAGE, tmp_path / "scalars.png",
                                  size=(1200, 800), budget_ms=15_000)

    assert _groups(dom) == {tag.split("/")[0] for tag in tags["scalars"] + tags["images"]}
    last = events.Scalars("acc/train")[-1]
    cells = _card_cells(dom, "acc/train")
    assert str(last.step) in cells
    assert any(abs(number - last.value) < 5e-5 for number in _numbers(cells))
    assert _run_pixels(shot) >= 300  # lines of two charts at least, not the run's checkbox
    assert shot.stat().st_size < 250_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS_SCREENSHOT)
