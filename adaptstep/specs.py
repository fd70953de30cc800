"""Project YAML files: task specs under ``envs/`` and hyperparameters under ``agents/``.

They are looked up in the current directory first, then in the adaptstep checkout itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_file(relative: str | Path) -> Path:
    """``./relative`` if it exists, else the checkout's own copy."""
    for root in (Path.cwd(), PROJECT_ROOT):
        if (root / relative).exists():
            return root / relative
    raise FileNotFoundError(f"{relative} not found in {Path.cwd()} or {PROJECT_ROOT}")


def parse_value(text: str) -> Any:
    """A command-line value: int, float (``1e-9`` too, which YAML 1.1 reads as a string), else YAML."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def parse_assignments(text: str, what: str) -> dict[str, Any]:
    """``key=value,key=value`` into a dict, values through ``parse_value``."""
    assignments = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} must be KEY=VALUE pairs separated by ',', got {item!r}")
        assignments[key.strip()] = parse_value(value)
    return assignments


def parse_env_kwargs(options: Sequence[str]) -> dict[str, Any]:
    """Repeated ``--env-kwarg`` options into a dict: each ``KEY=VALUE``, or several joined by ','; a VALUE that
    opens with '[' or '{' is one YAML value to the option's end (``"steps_choices=[2, 5]"``)."""
    kwargs: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if sep and key.strip() and value.lstrip().startswith(("[", "{")):
            kwargs[key.strip()] = parse_value(value)
        else:
            kwargs.update(parse_assignments(option, "--env-kwarg"))
    return kwargs


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"YAML file not found: {path}")
    return yaml.safe_load(path.read_text())


def task_spec(env_id: str) -> dict[str, Any]:
    """The task spec (``id``, ``kwargs``, ``baselines``) in ``envs/*.yaml`` whose ``id`` is ``env_id``."""
    folder = project_file("envs")
    for path in sorted(folder.glob("*.yaml")):
        spec = load_yaml(path)
        if spec.get("id") == env_id:
            return {"kwargs": {}, "baselines": [], **spec}
    raise ValueError(f"no task spec with id {env_id!r} in {folder}")
