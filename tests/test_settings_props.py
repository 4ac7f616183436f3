"""Every setting at and beyond its limits, and mutated config files: each outcome is a valid
config or one SettingError/UserError line, never another exception (Hypothesis)."""
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cifar_engine.errors import SettingError, UserError
from cifar_engine.settings import SETTINGS
from cifar_engine.training.config import TrainConfig

AWKWARD = st.one_of(
    st.sampled_from([0, -1, 1, 2**63, -2**63, 10**30, 0.5, -0.0, math.nan, math.inf,
                     -math.inf, 1e-320, "", "abc", "2ep", True, False, None, [], [0], [1.5],
                     [10**12], {}]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(min_value=-3, max_value=10**10), max_size=3),
)


def _outcome(values):
    """The config of `values`, or None when it was refused in one line."""
    try:
        return TrainConfig.from_dict(values)
    except UserError as err:  # SettingError is one
        assert len(str(err).splitlines()) == 1 and str(err)
        return None


@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(SETTINGS)), value=AWKWARD)
@example(name="seed", value=1180591620717411303424)
@example(name="hidden", value="abc")
@example(name="batch_size", value=1.5)
def test_any_value_of_any_setting_is_taken_or_refused_naming_it(name, value):
    try:
        config = TrainConfig.from_dict({"split": "all", name: value})
    except SettingError as err:
        assert err.setting == name or err.setting in SETTINGS  # a cross-setting rule
        assert len(str(err).splitlines()) == 1
        return
    kept = getattr(config, name)
    assert SETTINGS[name].check(kept) == kept  # what was taken is within the limits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_config_files_load_or_fail_in_one_line(tmp_path, data):
    text = bytearray(TrainConfig(hidden=(50, 50), split="all", lam=0.01, schedule="triangular",
                                 cycles=2).to_toml().encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            text[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del text[at:]
            if not text:
                break
        else:
            text[at:at] = data.draw(st.sampled_from([b"=", b'"', b"[", b"\n", b"1e999",
                                                     b"-", b".5", b"\x00"]))
    path = tmp_path / "config.toml"
    path.write_bytes(bytes(text))
    try:
        TrainConfig.from_toml(path)
    except UserError as err:
        assert len(str(err).splitlines()) == 1 and str(path) in str(err)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "1e400",
                                   "99999999999999999999", "2.5", "abc"])
@pytest.mark.parametrize("flag", ["--batch-size", "--lam", "--eta", "--momentum", "--dropout",
                                  "--n-val", "--steps", "--translate", "--noise", "--seed",
                                  "--eval-every", "--checkpoint-every", "--threads", "--gamma",
                                  "--sigma", "--n-s"])
def test_numeric_options_at_their_limits_end_in_one_line_or_plan(capsys, tmp_path, flag, value):
    from cifar_engine.cli.main import main
    from fakes import write_image_tree

    images = write_image_tree(tmp_path / "images", per_class=(30, 5), size=(4, 4)).path
    code = main(["train", "--data", str(images), "--split", "all", "--n-val", "10",
                 "--batch-size", "10", "--hidden", "4", "--dry-run", "--out",
                 str(tmp_path / "r"), flag, value])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and flag.split("-")[-1] in err
