"""environment.py: the variables Numba, OpenMP and BLAS read are checked before Numba loads,
for the command line (one line, exit 2) and Python callers (a UserError) alike."""
import os
import subprocess
import sys

import pytest

from cifar_engine.runtime.environment import EnvironmentVariableError, check_environment


def _run(args, **env):
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("name, value", [("NUMBA_NUM_THREADS", "0"),
                                         ("NUMBA_NUM_THREADS", "abc"),
                                         ("OMP_NUM_THREADS", "-3"),
                                         ("NUMBA_THREADING_LAYER", "foo")])
def test_the_command_line_names_a_bad_variable_in_one_line(name, value):
    result = _run([sys.executable, "-m", "cifar_engine.cli.main", "presets"], **{name: value})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"cifar-engine: error: environment variable {name} ")
    assert result.stderr.count("\n") == 1 and repr(value) in result.stderr


def test_python_callers_get_a_user_error_before_numba_loads():
    code = ("import sys, cifar_engine\n"
            "try:\n    from cifar_engine.model.network import Network\n"
            "except cifar_engine.UserError as err:\n"
            "    print(type(err).__name__, 'numba' in sys.modules, err)\n")
    result = _run([sys.executable, "-c", code], NUMBA_NUM_THREADS="0")
    assert result.stdout.startswith("EnvironmentVariableError False environment variable "
                                    "NUMBA_NUM_THREADS"), result.stderr


@pytest.mark.parametrize("environ", [{}, {"NUMBA_NUM_THREADS": "2"}, {"OMP_NUM_THREADS": "4,2"},
                                     {"NUMBA_NUM_THREADS": ""},
                                     {"NUMBA_THREADING_LAYER": "workqueue"}])
def test_good_values_pass(environ):
    check_environment(environ)


@pytest.mark.parametrize("name, value", [("NUMBA_NUM_THREADS", "1.5"),
                                         ("NUMBA_NUM_THREADS", "100000"),
                                         ("OMP_NUM_THREADS", "4,0"),
                                         ("OPENBLAS_NUM_THREADS", "0"),
                                         ("MKL_NUM_THREADS", "x")])
def test_bad_values_are_refused_naming_the_variable(name, value):
    with pytest.raises(EnvironmentVariableError, match=f"^environment variable {name} "):
        check_environment({name: value})
