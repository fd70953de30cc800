"""Property tests of the two user-facing grammars (issue 35): any string given to the controller-spec parser or to
the ``--env-kwarg`` parser either parses or raises ``ValueError`` whose message quotes the offending spec or item;
no other exception type escapes."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from adaptstep.agents.controllers import parse_controller
from adaptstep.core.registry import baselines
from adaptstep.core.settings import parse_settings

PREFIXES = sorted({"fixed", "random", *baselines()})
WORDS = st.text(alphabet=string.ascii_letters + string.digits + "_-.+", max_size=8)
VALUES = st.one_of(WORDS, st.sampled_from(["0.01", "-1", "1e-9", "inf", "nan", "abc", "[1", "[1, 2]", "{a: 1}", "",
                                           "true", "maybe", "1,2", ":", "@", "=", "!!x", "'", '"', "%", "*a", "&a"]))
PAIRS = st.lists(st.tuples(st.sampled_from(["eta", "epsilon", "mu", "every", "grid_size", "value", "dt", "x",
                                            "t_end", "backend", "discrete", "solver"]) | WORDS, VALUES),
                 max_size=3).map(lambda pairs: ",".join(f"{key}={value}" for key, value in pairs))
SPECS = st.one_of(
    st.text(max_size=30),  # anything at all
    st.builds(lambda prefix, head, pairs, at, overrides: f"{prefix}:{head}{pairs}" + (f"@{overrides}" if at else ""),
              st.sampled_from(PREFIXES), st.sampled_from(["", "ias15,", "rbf,", "logsnr_uniform,", "x,"]), PAIRS,
              st.booleans(), PAIRS),
    st.builds(lambda text: f"{text}.zip", st.text(max_size=10)),
)


@settings(max_examples=400, deadline=None)
@given(SPECS)
def test_any_controller_spec_parses_or_raises_a_value_error_quoting_it(spec):
    try:
        controller = parse_controller(spec)
    except ValueError as error:
        assert repr(spec) in str(error) or spec in str(error), str(error)
    else:
        assert controller.name == spec


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), PAIRS), min_size=1, max_size=3))
def test_any_env_kwarg_parses_or_raises_a_value_error_quoting_the_item(items):
    try:
        parsed = parse_settings(items, "--env-kwarg")
    except ValueError as error:
        message = str(error)
        assert message.startswith("--env-kwarg") and any(repr(item) in message for item in items), message
    else:
        assert all(isinstance(key, str) and key == key.strip() and key for key in parsed)
