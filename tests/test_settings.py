"""The one KEY=VALUE parser and the shared validators: properties over generated settings, and one clear line for bad
input."""

import argparse
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptstep.core.settings import (
    int_list,
    parse_settings,
    parse_value,
    require_choice,
    require_int,
    require_nonnegative,
    require_positive,
)

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
VALUES = st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["dpmpp2m", "logsnr_uniform", "rebound-ias15", "true", "null"]))


def expected(value):
    """What parse_value makes of ``repr``-formatted ``value`` (YAML reads true/null)."""
    return {"true": True, "null": None}.get(value, value) if isinstance(value, str) else value


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_joined_pairs_parse_back_to_their_values(settings):
    text = ",".join(f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in settings.items())
    parsed = parse_settings(text, "--option")
    assert parsed.keys() == settings.keys()
    for key, value in settings.items():
        assert parsed[key] == expected(value) or (isinstance(value, float) and math.isclose(parsed[key], value))


@given(st.lists(st.tuples(KEYS, st.integers(0, 99)), min_size=1, max_size=8))
def test_repeated_options_take_the_last_value_of_a_key(pairs):
    parsed = parse_settings([f"{key}={value}" for key, value in pairs], "--env-kwarg")
    assert parsed == dict(pairs)


@given(KEYS, st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_a_bracketed_value_is_one_yaml_value_and_unsplit_options_keep_commas(key, values):
    joined = ", ".join(map(str, values))
    assert parse_settings([f"{key}=[{joined}]"], "--env-kwarg") == {key: values}
    assert parse_settings([f"{key}={joined}"], "--budget", split=False, typed=False) == {key: joined}


@pytest.mark.parametrize("text", ["nfe", "=3", "a=1,b", " =1"])
def test_a_pair_without_key_or_equals_sign_names_the_option(text):
    with pytest.raises(ValueError, match="^--env-kwarg must be KEY=VALUE"):
        parse_settings(text, "--env-kwarg")


def test_values_parse_as_int_float_or_yaml():
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-9") == 1e-9
    assert parse_value("[2, 5]") == [2, 5]
    assert parse_value("hermite") == "hermite"


def test_validators_return_the_value_or_name_the_parameter():
    assert require_int("steps", np.int64(4)) == 4
    assert require_positive("eta", 0.5) == 0.5
    assert require_nonnegative("weight", 0) == 0.0
    assert require_choice("mode", "stop", ("quota", "stop")) == "stop"
    assert int_list("1,2,4") == [1, 2, 4]
    for call, match in ((lambda: require_int("steps", True), "steps must be an int >= 1, got True"),
                        (lambda: require_int("steps", 0), "steps must be an int >= 1, got 0"),
                        (lambda: require_positive("eta", math.inf), "eta must be a finite number > 0"),
                        (lambda: require_positive("eta", "0.1"), "eta must be a finite number > 0"),
                        (lambda: require_nonnegative("weight", -1), "weight must be a finite number >= 0"),
                        (lambda: require_choice("mode", "x", ("quota", "stop")), r"mode must be one of \['quota'"),
                        ):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(argparse.ArgumentTypeError, match="must list ints >= 1 such as 2,5, got '1,0'"):
        int_list("1,0")
