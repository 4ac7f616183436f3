"""optuna-dashboard shows a search mirrored with `search --optuna-journal PATH`, offline: its
server on 127.0.0.1 over the journal file (tests/servers.py), the study's page opened in
headless Chromium that can reach 127.0.0.1 only (tests/browser.py). What the page shows is
held to the study Optuna itself loads from the same file."""
import html
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
from fakes import write_learnable_tree

optuna = pytest.importorskip("optuna")
from optuna.storages import JournalStorage  # noqa: E402
from optuna.storages.journal import JournalFileBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "optuna-dashboard.png"
DASHBOARD = Path(sys.executable).parent / "optuna-dashboard"
BEST_RGB = (0xAB, 0x63, 0xFA)  # the History plot's best-value line (plotly's 5th colour)
# --seed 3: a best value that rises over the trials, and pruned ones (a telling picture)
SEARCH = ["--seed", "3", "--batch-size", "10", "--schedule", "constant", "--momentum", "0.9",
          "--prune", "--param", "eta=1e-3:1:log", "--param", "lam=1e-5:1e-1:log",
          "--stage", "10:3epochs"]


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """(the Optuna journal file of a finished tiny search, its study loaded by Optuna, the
    study's id in the file)."""
    root = tmp_path_factory.mktemp("optuna-dashboard")
    images = write_learnable_tree(root / "images", noise=80.0)  # a range of values
    path = root / "optuna.log"
    code = main(["search", "--data", str(images), "--out", str(root / "tiny-search"), *SEARCH,
                 "--optuna-journal", str(path)])
    assert code == 0
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="tiny-search", storage=storage)
    return path, study, storage.get_study_id_from_name(study.study_name)


def _text(dom):
    """The page's text: its tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _js(number):
    """A float as JavaScript prints it: Python's shortest repr, but integers without ".0"."""
    return str(int(number)) if number == int(number) else repr(number)


def _pixels(png, rgb):
    """How many pixels of `png` have (nearly) the colour `rgb`."""
    image = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return int((np.abs(image - np.array(rgb)).sum(axis=-1) <= 30).sum())


@pytest.mark.slow
def test_the_dashboard_shows_the_searchs_trials_offline(journal, tmp_path):
    path, study, study_id = journal
    page = f"dashboard/studies/{study_id}"
    with servers.running([DASHBOARD, path, "--host", "127.0.0.1", "--port", "{port}"],
                         "api/studies", ready=lambda body: b'"tiny-search"' in body) as url:
        text = _text(browser.dump_dom(url + page, budget_ms=15_000))
        shot = browser.screenshot(url + page, tmp_path / "study.png", size=(1200, 800),
                                  budget_ms=15_000)

    assert f"{study.study_name} (id={study_id})" in text
    best = study.best_trial
    assert f"Best Trial (number={best.number}) {_js(best.value)}" in text
    for name, value in best.params.items():
        assert re.search(rf"\b{name}: {value:.4g}\b", text), (name, value, text[:2000])
    # the intermediate values plot has a line, and a legend entry, per trial
    assert {int(n) for n in re.findall(r"trial #(\d+)", text)} == {
        t.number for t in study.trials if t.intermediate_values}
    assert _pixels(shot, BEST_RGB) >= 100
    assert shot.stat().st_size < 250_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS_SCREENSHOT)
