"""`cifar-engine grad-check` from the command line."""
import json

import pytest

from cifar_engine.cli.main import main


def test_synthetic_check_prints_every_tensor_and_passes(capsys):
    code = main(["grad-check", "--synthetic", "--samples", "10", "--features", "12",
                 "--hidden", "16,8", "--bn", "--lam", "0.005"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"):
        assert f"\n{name} " in out
    assert "FAIL" not in out


def test_json_output_holds_both_methods(capsys):
    code = main(["grad-check", "--synthetic", "--samples", "8", "--features", "10",
                 "--hidden", "none", "--loss", "svm", "--lam", "0.1", "--method", "both",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(report) == {"centred", "forward"}
    assert [r["name"] for r in report["centred"]] == ["W1", "b1"]
    assert all(r["passed"] for r in report["centred"])


@pytest.mark.parametrize("args, option", [
    (["--hidden", "50,0"], "--hidden"),
    (["--hidden", ""], "--hidden"),
    (["--lam", "-1"], "--lam"),
    (["--init", "zeros"], "--init"),
    (["--samples", "0"], "--samples"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, args, option):
    code = main(["grad-check", "--synthetic", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and option in err


@pytest.mark.parametrize("args, option", [
    (["--tol", "inf"], "--tol"),
    (["--tol", "nan"], "--tol"),
    (["--tol", "2"], "--tol"),
    (["--eps", "nan"], "--eps"),
    (["--eps", "inf"], "--eps"),
    (["--h", "inf"], "--h"),
    (["--h", "1e-300"], "--h"),
    (["--samples", "1", "--bn"], "--samples"),
    (["--entries", "0"], "--entries"),
    (["--classes", "100000000"], "--classes"),
    (["--samples", "2000000000"], "--samples"),
    (["--features", "1000000000000"], "--features"),
])
def test_settings_beyond_their_limits_are_one_line_and_exit_2(capsys, args, option):
    code = main(["grad-check", "--synthetic", "--samples", "4", "--features", "5",
                 "--hidden", "3", *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and option in captured.err


@pytest.mark.parametrize("args, option", [
    (["--classes", "10000000", "--hidden", "1000"], "--classes"),
    (["--samples", "10000000", "--features", "1000"], "--samples"),
    (["--features", "10000000", "--hidden", "1000"], "--features"),
])
def test_a_check_too_large_for_memory_names_its_culprit_before_allocating(capsys, args,
                                                                          option):
    code = main(["grad-check", "--synthetic", "--features", "5", "--hidden", "4", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{option} gives a network that needs" in err


def test_a_step_too_small_to_measure_anything_fails_and_says_so(capsys):
    code = main(["grad-check", "--synthetic", "--samples", "5", "--features", "6",
                 "--hidden", "4", "--h", "1e-15"])
    captured = capsys.readouterr()
    assert code == 1
    assert "measured nothing" in captured.out
    assert "W1" in captured.err and "measured nothing" in captured.err
