"""The asv dashboard works offline: asv_bench/offline_assets.py copies the scripts asv loads
from CDNs out of pinned npm packages and points index.html at them.

The fast tests use small fake npm tarballs; the slow one publishes a real dashboard from a
tiny asv history, fetches the real packages with npm and opens the pages in headless
Chromium that can reach 127.0.0.1 only (tests/browser.py).
"""
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import browser

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("offline_assets",
                                               ROOT / "asv_bench" / "offline_assets.py")
offline_assets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(offline_assets)

ASV_WWW = Path(importlib.util.find_spec("asv").origin).parent / "www"
FAILED = "One or more external (JavaScript) dependencies of airspeed velocity failed to load"
SERIES_RGB = (0x24, 0x7A, 0xAD)  # the first of asv's series colours ($.asv.colors in asv.js)
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "asv-dashboard.png"


def _tarball(path, files):
    """Write an npm-style tarball (files under package/) of `files` {inner path: bytes}."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_npm_package(tmp_path, monkeypatch):
    """A one-file package "demo@1.0.0" that fetch_packages returns, its manifest, and an
    html folder whose index.html loads the file from a CDN."""
    script = b"window.demo = 1;\n"
    tarball = _tarball(tmp_path / "demo-1.0.0.tgz", {"js/demo.min.js": script})
    manifest = {"packages": {"demo@1.0.0": offline_assets.sri(tarball.read_bytes(), "sha512")},
                "files": [{"url": "https://cdn.example.org/demo/1.0.0/demo.min.js",
                           "package": "demo@1.0.0", "path": "js/demo.min.js",
                           "integrity": offline_assets.sri(script, "sha256")}]}
    monkeypatch.setattr(offline_assets, "fetch_packages",
                        lambda specs, folder: {"demo@1.0.0": tarball})
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(
        '<script src="https://cdn.example.org/demo/1.0.0/demo.min.js" integrity="sha256-x" '
        'onerror="js_load_failure()"></script>\n')
    return manifest, html, script


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_file_is_copied_and_index_points_at_it_with_its_hash(fake_npm_package):
    manifest, html, script = fake_npm_package
    offline_assets.make_offline(html, manifest)
    assert (html / "vendor" / "demo-1.0.0" / "js" / "demo.min.js").read_bytes() == script
    entry = manifest["files"][0]
    assert (html / "index.html").read_text() == (
        f'<script src="vendor/demo-1.0.0/js/demo.min.js" integrity="{entry["integrity"]}" '
        'onerror="js_load_failure()"></script>\n')
    offline_assets.make_offline(html, manifest)  # again, on its own output: the same
    assert _listing(html) == ["index.html", "vendor", "vendor/demo-1.0.0",
                              "vendor/demo-1.0.0/js", "vendor/demo-1.0.0/js/demo.min.js"]


@pytest.mark.parametrize("pin", ["packages", "files"])
def test_a_hash_mismatch_writes_nothing(fake_npm_package, pin):
    manifest, html, _ = fake_npm_package
    if pin == "packages":
        manifest["packages"]["demo@1.0.0"] = offline_assets.sri(b"other", "sha512")
    else:
        manifest["files"][0]["integrity"] = offline_assets.sri(b"other", "sha256")
    before = (html / "index.html").read_bytes()
    with pytest.raises(offline_assets.UserError, match="hash mismatch"):
        offline_assets.make_offline(html, manifest)
    assert _listing(html) == ["index.html"]
    assert (html / "index.html").read_bytes() == before


def test_an_external_script_not_in_the_manifest_is_refused(fake_npm_package):
    manifest, html, _ = fake_npm_package
    with open(html / "index.html", "a") as file:
        file.write('<script src="https://cdn.example.org/other.js"></script>\n')
    with pytest.raises(offline_assets.UserError, match="still loads https://cdn.example.org/other"):
        offline_assets.make_offline(html, manifest)
    assert _listing(html) == ["index.html"]


def test_the_manifest_covers_every_cdn_file_of_the_installed_asv():
    manifest = offline_assets.load_manifest()
    html = offline_assets.point_at_local((ASV_WWW / "index.html").read_text(), manifest["files"])
    for entry in manifest["files"]:
        assert f'"{offline_assets.local_path(entry)}"' in html
        assert entry["package"] in manifest["packages"]


def _fake_npm(folder, stderr, code):
    npm = folder / "npm"
    npm.write_text(f"#!/bin/sh\nprintf '{stderr}' >&2\nexit {code}\n")
    npm.chmod(0o755)
    return folder


def test_npm_failing_is_one_line_and_nothing_written(tmp_path, monkeypatch, capsys):
    html = tmp_path / "html"
    html.mkdir()
    shutil.copy(ASV_WWW / "index.html", html / "index.html")
    before = (html / "index.html").read_bytes()
    npm_says = "npm error code ENOTFOUND\\nnpm error more\\n"
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path, npm_says, 1)))
    assert offline_assets.main([str(html)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "npm pack jquery@3.3.1" in err and "(npm error code ENOTFOUND)" in err
    assert _listing(html) == ["index.html"] and (html / "index.html").read_bytes() == before


def test_no_npm_and_no_index_are_one_line_each(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(offline_assets.UserError, match="npm not found"):
        offline_assets.fetch_packages(["jquery@3.3.1"], tmp_path)
    assert offline_assets.main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == (f"offline_assets: {tmp_path / 'nowhere' / 'index.html'}: "
                                       "not found (run `asv publish` first)\n")


# -- in the browser ----------------------------------------------------------------------------

BENCHMARK = '''from pathlib import Path


def track_value():
    return float((Path(__file__).parent / "value.txt").read_text())
'''


def _asv_history(project, values):
    """An asv project in `project` (a git repo) with one benchmark, run on one commit per
    value of `values` (the benchmark returns it), and published into project/html."""
    (project / "benchmarks").mkdir(parents=True)
    (project / "benchmarks" / "__init__.py").write_text("")
    (project / "benchmarks" / "bench_tiny.py").write_text(BENCHMARK)
    (project / "asv.conf.json").write_text(json.dumps({
        "version": 1, "project": "tiny", "repo": ".", "branches": ["main"],
        "environment_type": "existing", "benchmark_dir": "benchmarks",
        "results_dir": "results", "html_dir": "html"}))
    env = {**os.environ, "HOME": str(project / "home")}  # asv's machine file, git's config

    def run(*command):
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-2000:]
            pytest.fail(f"{' '.join(map(str, command))}: {output}", pytrace=False)
        return done.stdout

    asv = (Path(sys.executable).parent / "asv", "--config", "asv.conf.json")
    run("git", "init", "-q", "-b", "main")
    run(*asv, "machine", "--yes", "--machine", "tiny")
    for value in values:
        (project / "benchmarks" / "value.txt").write_text(f"{value}\n")
        run("git", "add", "-A")
        run("git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "v")
        head = run("git", "rev-parse", "HEAD").strip()
        run(*asv, "run", "--python=same", "--quick", "--machine", "tiny",
            f"--set-commit-hash={head}")
    run(*asv, "publish")
    return project / "html"


def _series_pixels(png):
    """How many pixels of `png` have (nearly) the first series colour."""
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    return int((np.abs(rgb - np.array(SERIES_RGB)).sum(axis=-1) <= 30).sum())


@pytest.mark.slow
def test_the_published_dashboard_draws_its_points_offline(tmp_path):
    values = [3, 7, 5]
    html = _asv_history(tmp_path / "project", values)
    as_published = shutil.copytree(html, tmp_path / "as-published")
    assert offline_assets.main([str(html)]) == 0
    graph = "index.html#bench_tiny.track_value"

    with browser.serve(as_published) as url:  # the control: asv's page needs the internet
        assert FAILED in browser.dump_dom(url + graph, allow_errors=True)
        control = browser.screenshot(url + graph, tmp_path / "control.png", allow_errors=True)
    with browser.serve(html) as url:
        dom = browser.dump_dom(url + graph)
        shot = browser.screenshot(url + graph, tmp_path / "graph.png", size=(1000, 600))
        listing = browser.dump_dom(url + "index.html#summarylist")

    assert FAILED not in dom and 'class="flot-base"' in dom
    # flot scales the y axis to the points it plots: its ticks run from the least to the most
    ticks = [float(t) for t in re.findall(r'"flot-tick-label tickLabel"[^>]*>([-\d.]+)<', dom)]
    assert (min(ticks), max(ticks)) == (min(values), max(values))
    assert _series_pixels(shot) >= 100 and _series_pixels(control) == 0
    assert "bench_tiny.track_value" in listing
    assert 'class="sorting-asc' in listing  # stupidtable sorted the benchmark list
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS_SCREENSHOT)
