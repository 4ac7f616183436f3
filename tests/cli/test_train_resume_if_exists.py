"""`cifar-engine train --resume-if-exists`: one command line that a requeued job runs again."""
import pytest

from cifar_engine.cli.main import main
from fakes import FAST_TRAIN as FAST


def _train(capsys, images, out, *args):
    code = main(["train", "--data", str(images), "--out", str(out), *FAST, "--cycles", "1",
                 *args])
    return code, capsys.readouterr()


def test_the_same_command_again_trains_nothing_once_its_run_finished(capsys, images, tmp_path):
    code, first = _train(capsys, images, tmp_path / "run", "--resume-if-exists")
    assert code == 0 and "test accuracy" in first.out
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    code, again = _train(capsys, images, tmp_path / "run", "--resume-if-exists")

    assert code == 0 and again.err == ""
    assert again.out == (f"nothing to train: the run in {tmp_path / 'run'} has finished; see "
                         f"its summary.json\nrun folder: {tmp_path / 'run'}\n")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == files


def test_a_command_with_other_settings_is_one_line_naming_the_flag(capsys, images, tmp_path):
    _train(capsys, images, tmp_path / "run")
    code, out = _train(capsys, images, tmp_path / "run", "--resume-if-exists", "--lam", "0.5")
    assert code == 2 and out.out == ""
    assert out.err.startswith("cifar-engine: error: --lam is 0.5 here, ")
    assert out.err.endswith("give the same settings to carry on that run, or another --out\n")


@pytest.mark.parametrize("args", [["--overwrite"], ["--dry-run"], ["--resume", "x"]])
def test_resume_if_exists_needs_out_and_excludes_what_contradicts_it(capsys, images, tmp_path,
                                                                    args):
    assert main(["train", "--data", str(images), "--resume-if-exists"]) == 2
    assert "--resume-if-exists needs --out" in capsys.readouterr().err
    code, out = _train(capsys, images, tmp_path / "run", "--resume-if-exists", *args)
    assert code == 2 and "--resume-if-exists" in out.err and len(out.err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
