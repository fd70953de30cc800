"""The one ``KEY=VALUE`` parser of the command line and the controller specs, and the shared validators.

Every error is one line that names the parameter and what it accepts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import yaml


TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def parse_value(text: str) -> Any:
    """A command-line value: int, float (``1e-9`` too, which YAML 1.1 reads as a string), else YAML.

    Raises:
        ValueError: If ``text`` is none of these (e.g. an unclosed ``[``), quoting it.
    """
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"{text!r} is not a number, a word or a YAML value") from None


def parse_settings(items: str | Iterable[str], what: str, *, split: bool = True, typed: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` items into a dict.

    Args:
        items: One string or several (repeated options).
        what: The option's name for errors (``"--env-kwarg"``).
        split: Whether an item may hold several pairs joined by ``,`` (``"nfe=10,order=3"``); a VALUE that opens
            with ``[`` or ``{`` is then one YAML value to the item's end (``"steps_choices=[2, 5]"``). Without it the
            VALUE is the whole text after the first ``=`` (``"diffuser=1,2,5"``).
        typed: Whether values go through ``parse_value``; else they stay strings (paths, lists to parse later).

    Returns:
        The pairs, later items overriding earlier ones (a repeated option); one item naming a key twice is an error.

    Raises:
        ValueError: If an item is not ``KEY=VALUE``, names a key twice or holds a value that does not parse; the
            message names the option and the item.
    """
    settings: dict[str, Any] = {}
    for item in [items] if isinstance(items, str) else items:
        key, sep, value = item.partition("=")
        whole = not split or value.lstrip().startswith(("[", "{"))
        pairs = [(key, sep, value)] if whole else [part.partition("=") for part in filter(None, item.split(","))]
        seen: set[str] = set()
        for key, sep, value in pairs:
            if not sep or not key.strip():
                example = "KEY=VALUE pairs separated by ','" if split else "KEY=VALUE"
                raise ValueError(f"{what} must be {example}, got {item!r}")
            key = key.strip()
            if key in seen:
                raise ValueError(f"{what} names {key!r} twice in {item!r}; give each key once")
            seen.add(key)
            try:
                settings[key] = parse_value(value) if typed else value
            except ValueError as error:
                raise ValueError(f"{what}: {key} in {item!r}: {error}") from None
    return settings


def require_bool(name: str, value: Any) -> bool:
    """``value`` as a bool: a bool, 0 or 1, or one of the words true/false/yes/no/1/0 (any case).

    A flag given as ``discrete=maybe`` must not switch anything on.

    Args:
        name: The parameter's name, for the error.
        value: The value to check.

    Raises:
        ValueError: If ``value`` is none of these, naming ``name``.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"{name} must be true or false (also 1/0, yes/no), got {value!r}")


def require_number(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                   low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite number (not a bool) within the bounds given.

    Args:
        name: The parameter's name, for the error.
        value: The value to check.
        low: The lower bound; None for none.
        high: The upper bound; None for none.
        low_open: Whether ``low`` itself is excluded.
        high_open: Whether ``high`` itself is excluded.

    Raises:
        ValueError: If ``value`` is not such a number, naming ``name`` and the range.
    """
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bounds = f" {'<' if high_open else '<='} {high:g}"
        else:
            bounds = ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return float(value)


def require_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``.

    Raises:
        ValueError: If it is not, naming ``name``.
    """
    if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and value >= minimum):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def require_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0.

    Raises:
        ValueError: If it is not, naming ``name``.
    """
    return require_number(name, value, 0, low_open=True)


def require_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0.

    Raises:
        ValueError: If it is not, naming ``name``.
    """
    return require_number(name, value, 0)


def require_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: If it is not, naming ``name`` and listing the choices.
    """
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def int_list(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``, an argparse type for options that list ints >= 1."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        values = []
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"must list ints >= 1 such as 2,5, got {text!r}")
    return values


def int_pair(text: str) -> tuple[int, int]:
    """``"15,25"`` -> (15, 25), an argparse type for options given as LO,HI."""
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers LO,HI such as 15,25, got {text!r}") from None
    return low, high


def seed_argument(text: str) -> int:
    """An argparse type for seeds: an int >= 0 (numpy's generators take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return value


def check_finite(key: str, values: Any) -> None:
    """Check that training data holds no NaN or inf (a model trained on it would be all NaN, silently).

    Args:
        key: The data's name, for the error.
        values: An array-like; None and non-float arrays pass.

    Raises:
        ValueError: If ``values`` holds NaN or inf, naming ``key``, the first such entry's index and its value.
    """
    if values is None:
        return
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.complexfloating):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(f"key {key!r} holds {int(bad.sum())} non-finite values, the first at index {where} "
                         f"({array[index]}); clean the data before training")


def add_torch_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every command that trains or runs torch models shares: ``--device``, ``--threads``,
    ``--overwrite`` and ``--no-progress``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--no-progress", action="store_true")
