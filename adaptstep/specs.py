"""Project YAML files: task specs under ``envs/`` and hyperparameters under ``agents/``.

They are looked up in the current directory first, then in the adaptstep checkout itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adaptstep.core.registry import family_of

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_file(relative: str | Path) -> Path:
    """``./relative`` if it exists, else the checkout's own copy."""
    for root in (Path.cwd(), PROJECT_ROOT):
        if (root / relative).exists():
            return root / relative
    raise FileNotFoundError(f"{relative} not found in {Path.cwd()} or {PROJECT_ROOT}")


def load_yaml(path: str | Path) -> Any:
    """The YAML file at ``path``, parsed safely.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: On a syntax error, naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"YAML file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{path} is not valid YAML{where}: {problem}") from None


def env_task_spec(env_id: str) -> dict[str, Any]:
    """The task spec (``id``, ``kwargs``, ``baselines``) of ``env_id``.

    It is the one among its family's ``task_specs`` (YAML files under ``envs/``) whose ``id`` is ``env_id``.

    Raises:
        ValueError: If no task spec has that id.
    """
    folder = project_file("envs")
    for name in family_of(env_id).task_specs:
        spec = load_yaml(folder / name)
        if spec.get("id") == env_id:
            return {"kwargs": {}, "baselines": [], **spec}
    raise ValueError(f"no task spec with id {env_id!r} in {folder}")
