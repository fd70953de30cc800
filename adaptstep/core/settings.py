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


def parse_value(text: str) -> Any:
    """A command-line value: int, float (``1e-9`` too, which YAML 1.1 reads as a string), else YAML."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


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
        The pairs, later items overriding earlier ones.

    Raises:
        ValueError: If an item is not ``KEY=VALUE``.
    """
    settings: dict[str, Any] = {}
    for item in [items] if isinstance(items, str) else items:
        key, sep, value = item.partition("=")
        whole = not split or value.lstrip().startswith(("[", "{"))
        pairs = [(key, sep, value)] if whole else [part.partition("=") for part in filter(None, item.split(","))]
        for key, sep, value in pairs:
            if not sep or not key.strip():
                example = "KEY=VALUE pairs separated by ','" if split else "KEY=VALUE"
                raise ValueError(f"{what} must be {example}, got {item!r}")
            settings[key.strip()] = parse_value(value) if typed else value
    return settings


def require_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and value >= minimum):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def require_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.integer, np.floating))
                                       and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def require_nonnegative(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.integer, np.floating))
                                       and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def require_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError naming ``name`` and listing them."""
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
