import gzip
import hashlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cifar_engine.cli.main import cli, main
from cifar_engine.data.idx import LABELS_MAGIC
from fakes import assert_one_line_error, idx_bytes, rewrite_pickle, tar_folder


def run(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_data_group_help_lists_its_commands():
    result = run("data", "--help")

    assert result.exit_code == 0
    assert "Inspect, show and download datasets." in result.stdout
    for command in ("info", "show", "download"):
        assert command in result.stdout


@pytest.mark.parametrize("fixture", ["cifar10_archive", "cifar100_folder", "image_archive",
                                     "idx_folder"])
def test_info_prints_source_shape_classes_and_counts(request, cache_dir, fixture):
    fake = request.getfixturevalue(fixture)

    result = run("data", "info", "--data", fake.path, "--cache-dir", cache_dir)

    assert result.exit_code == 0, result.output
    c, h, w = fake.image_shape
    assert str(fake.path) in result.stdout
    assert f"{c} x {h} x {w}" in result.stdout
    assert ", ".join(fake.class_names[:3]) in result.stdout
    total = next(line for line in result.stdout.splitlines() if line.startswith("total"))
    n_train, n_test = len(fake.train_labels), len(fake.test_labels)
    batches = np.bincount(np.arange(n_train) * 5 // n_train)
    assert total.split()[1:] == [str(n) for n in (n_train, *batches, n_test)] or \
        fixture == "cifar10_archive"


def test_info_counts_per_class(image_tree, cache_dir):
    result = run("data", "info", "--data", image_tree.path, "--cache-dir", cache_dir)

    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[5:]}
    assert rows["class"] == ["train", "batch1", "batch2", "batch3", "batch4", "batch5", "test"]
    for name in image_tree.class_names:
        assert rows[name][0] == "4" and rows[name][-1] == "2"
        assert sum(int(n) for n in rows[name][1:6]) == 4


def test_info_coarse_labels(cifar100_archive, cache_dir):
    result = run("data", "info", "--data", cifar100_archive.path, "--labels", "coarse",
                 "--cache-dir", cache_dir)

    assert result.exit_code == 0, result.output
    assert "classes:     20: coarse00" in result.stdout


def test_info_uses_cifar_engine_data(image_tree, cache_dir, monkeypatch):
    monkeypatch.setenv("CIFAR_ENGINE_DATA", str(image_tree.path))

    result = run("data", "info", "--cache-dir", cache_dir)

    assert result.exit_code == 0 and str(image_tree.path) in result.stdout


def test_show_writes_the_grid_and_prints_its_path(image_tree, cache_dir, tmp_path):
    out = tmp_path / "plots" / "grid.png"

    result = run("data", "show", "--data", image_tree.path, "--cache-dir", cache_dir,
                 "--out", out, "--per-class", 3, "--seed", 1)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(out).size[1] > 3 * 30  # three rows of images
    assert sorted(os.listdir(out.parent)) == ["grid.png"]


def test_show_to_a_path_that_cannot_be_written(idx_folder, cache_dir, tmp_path):
    (tmp_path / "plots").write_text("a file where a folder should be")

    result = run("data", "show", "--data", idx_folder.path, "--cache-dir", cache_dir,
                 "--out", tmp_path / "plots" / "grid.png")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"cifar-engine: error: {tmp_path / 'plots' / 'grid.png'}: "
                                    "cannot write (")
    assert result.stderr.count("\n") == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make, what", [
    (os.mkfifo, "a FIFO"), (os.mkdir, "a folder"),
    (lambda p: os.symlink(os.devnull, p), "a character device")])
def test_show_never_replaces_what_is_not_a_regular_file(idx_folder, cache_dir, tmp_path, make,
                                                        what):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "grid.png"
    make(out)
    before = os.lstat(out)

    result = run("data", "show", "--data", idx_folder.path, "--cache-dir", cache_dir,
                 "--out", out)

    assert_one_line_error(result, f"{out}: {what}, not a regular file: refusing to replace it")
    assert (os.lstat(out).st_ino, os.lstat(out).st_mode) == (before.st_ino, before.st_mode)
    assert os.listdir(tmp_path / "out") == ["grid.png"]


def test_show_replaces_a_picture_it_is_told_to(idx_folder, cache_dir, tmp_path):
    (tmp_path / "grid.png").write_bytes(b"an older grid")

    result = run("data", "show", "--data", idx_folder.path, "--cache-dir", cache_dir,
                 "--out", tmp_path / "grid.png", "--per-class", 2)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(30)
def test_show_bounds_the_images_per_class(idx_folder, cache_dir, tmp_path, capsys):
    code = main(["data", "show", "--data", str(idx_folder.path), "--cache-dir", str(cache_dir),
                 "--out", str(tmp_path / "out" / "grid.png"), "--per-class", "100000"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "'--per-class': 100000 is not in the range 1<=x<=50" in err
    assert not (tmp_path / "out").exists()


def test_download_fetches_and_prints_the_path(http_server, cifar10_folder, tmp_path):
    body = tar_folder(cifar10_folder.path, tmp_path / "a.tar.gz").read_bytes()
    url = http_server.serve("/cifar-10-python.tar.gz", body)

    result = run("data", "download", "--dest", tmp_path / "dest", "--url", url,
                 "--md5", hashlib.md5(body).hexdigest())

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "dest" / "cifar-10-python.tar.gz")


def test_download_hides_its_test_options():
    result = run("data", "download", "--help")

    assert "--dest" in result.stdout and "--url" not in result.stdout


# --- every bad input: one line on stderr, exit code 2, no traceback, nothing cached -----
# A case builds its bad input in tmp_path and returns (arguments, text the error must name).

def _missing_path(tmp, fixtures):
    return ["data", "info", "--data", tmp / "nowhere"], "nowhere: no such file or folder"


def _truncated_archive(tmp, fixtures):
    archive = fixtures("image_archive").path
    archive.write_bytes(archive.read_bytes()[:-40])
    return ["data", "info", "--data", archive], "images.tar.gz: not a readable tar archive"


def _not_gzip(tmp, fixtures):
    (tmp / "data.tar.gz").write_bytes(b"hello, I am text")
    return ["data", "info", "--data", tmp / "data.tar.gz"], "data.tar.gz: not a readable tar"


def _bad_batch(name, change, message):
    def case(tmp, fixtures):
        folder = fixtures("cifar10_folder").path
        rewrite_pickle(folder / name, change)
        return ["data", "info", "--data", folder], f"{name}: {message}"
    return case


def _malicious_pickle(tmp, fixtures):
    folder = fixtures("cifar10_folder").path
    (folder / "data_batch_1").write_bytes(pickle.dumps(os.system, protocol=2))
    return ["data", "info", "--data", folder], "data_batch_1: refused to load global posix.system"


def _image_folder(change, message):
    def case(tmp, fixtures):
        tree = fixtures("image_tree").path
        change(tree)
        return ["data", "info", "--data", tree], message
    return case


def _empty_folder(tree):
    for image in tree.rglob("*.png"):
        image.unlink()


def _idx_file(name, content, message):
    def case(tmp, fixtures):
        folder = fixtures("idx_folder").path
        (folder / name).write_bytes(content)
        return ["data", "info", "--data", folder], f"{name}: {message}"
    return case


def _unwritable_cache(tmp, fixtures):
    (tmp / "cache").write_text("a file")
    return (["data", "info", "--data", fixtures("idx_folder").path, "--cache-dir", tmp / "cache"],
            f"cache folder {tmp / 'cache'}: cannot write")


def _coarse_labels(tmp, fixtures):
    return (["data", "info", "--data", fixtures("idx_folder").path, "--labels", "coarse"],
            "--labels coarse: only CIFAR-100")


BAD_INPUTS = {
    "missing path": _missing_path,
    "truncated archive": _truncated_archive,
    "non-gzip archive": _not_gzip,
    "pickle missing keys": _bad_batch("data_batch_2", lambda b: b.pop(b"labels"),
                                      "missing key labels"),
    "wrong dtype": _bad_batch("data_batch_3", lambda b: b.update({b"data": b[b"data"] * 1.0}),
                              "data must be a uint8 array, not float64"),
    "shape not N x 3072": _bad_batch("test_batch",
                                     lambda b: b.update({b"data": b[b"data"][:, ::2]}),
                                     "data must have shape (N, 3072), not (8, 1536)"),
    "labels out of range": _bad_batch("data_batch_4", lambda b: b.update({b"labels": [99] * 6}),
                                      "labels must lie in 0..9"),
    "pickle running a command": _malicious_pickle,
    "folder with no images": _image_folder(_empty_folder, "images: no images"),
    "unreadable image": _image_folder(
        lambda tree: (tree / "train" / "bee" / "0001.png").write_bytes(b"garbage"),
        "0001.png: not a readable image"),
    "mixed sizes": _image_folder(
        lambda tree: Image.new("RGB", (9, 9)).save(tree / "test" / "ant" / "0001.png"),
        "0001.png: image is 9x9"),
    "idx wrong magic": _idx_file("t10k-images-idx3-ubyte.gz", b"\x1f\x8b" + b"\x00" * 20,
                                 "not a readable gzip"),
    "idx labels as images": _idx_file("train-images-idx3-ubyte.gz",
                                      gzip.compress(idx_bytes(LABELS_MAGIC, np.zeros(20))),
                                      "not an IDX file of 3-d unsigned bytes"),
    "idx truncated": _idx_file("train-labels-idx1-ubyte.gz", b"\x1f\x8b\x08\x00\x00",
                               "not a readable gzip file, or truncated"),
    "unwritable cache dir": _unwritable_cache,
    "coarse labels on fashion-mnist": _coarse_labels,
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_a_bad_input_is_one_line_exit_2_and_caches_nothing(request, tmp_path, case, monkeypatch):
    cache = tmp_path / "env-cache"
    monkeypatch.setenv("CIFAR_ENGINE_CACHE", str(cache))
    args, message = case(tmp_path, request.getfixturevalue)

    result = run(*args)

    assert_one_line_error(result, message)
    assert not cache.exists() or os.listdir(cache) == []
    assert not (tmp_path / "pwned").exists()


def test_the_installed_command_fails_in_one_line_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cifar_engine.cli.main", "data", "info", "--data", tmp_path / "x"],
        capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert result.stderr == f"cifar-engine: error: {tmp_path / 'x'}: no such file or folder\n"
    assert result.stdout == ""


def test_download_errors_leave_no_file(http_server, tmp_path):
    body = b"not the archive"
    url = http_server.serve("/cifar-10-python.tar.gz", body, length=len(body) + 5)

    for md5 in ("0" * 32, hashlib.md5(body).hexdigest()):
        result = run("data", "download", "--dest", tmp_path / "dest", "--url", url, "--md5", md5)

        assert result.exit_code == 2
        assert result.stderr == f"cifar-engine: error: {url}: transfer cut short, 15 of 20 bytes\n"
    assert not (tmp_path / "dest").exists()  # the folder it made is removed too
