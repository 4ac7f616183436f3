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
