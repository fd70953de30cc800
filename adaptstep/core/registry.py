"""The family registry: each family declares its env ids, baseline controllers, task specs and benchmark.

Families are found through the entry-point group ``adaptstep.families`` (``pyproject.toml``: each names a
``Family`` object) and through ``register_family`` at run time (a family defined in a notebook or a test). The
shared code (the harness, ``agents``, ``bench``, the CLI) asks this registry and names no family.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec, load_env_creator, register, registry

ENTRY_POINT_GROUP = "adaptstep.families"
WALL_TIME = WrapperSpec("WallTime", "adaptstep.core.wrappers:WallTime", {})


class WallTimed:
    """The entry point of an env id whose family declares a vector env: builds the env wrapped in ``WallTime``.

    ``gym.make_vec(..., vectorization_mode="vector_entry_point")`` refuses specs with ``additional_wrappers``, so these
    ids apply ``WallTime`` in their entry point instead (``gym.make`` gives the same wrapper stack either way).

    Args:
        entry_point: ``"module:Class"`` of the env.
    """

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    @property
    def metadata(self) -> dict[str, Any]:
        """The env class's metadata (``gym.make`` reads its render modes)."""
        return load_env_creator(self.entry_point).metadata

    def __call__(self, **kwargs: Any) -> gym.Env:
        """The env built with ``kwargs`` inside ``WallTime``."""
        from adaptstep.core.wrappers import WallTime  # here: the registry loads before any env

        return WallTime(load_env_creator(self.entry_point)(**kwargs))


@dataclass(frozen=True)
class Family:
    """One process family.

    Attributes:
        name: Short name, also the ``adaptstep bench NAME`` of its benchmark (e.g. ``"threebody"``).
        envs: Gymnasium env id -> ``"module:Class"`` of its ``AdaptiveEnv``.
        baselines: Controller-spec prefix -> ``"module:factory"``; ``factory(name=spec, env_overrides=..., **kwargs)``
            builds the controller.
        task_specs: Names of its YAML task specs under the project's ``envs/`` folder.
        benchmark: ``"module:Class"`` of its ``adaptstep.core.bench.Benchmark``, or None.
        vector_envs: Gymnasium env id -> ``"module:Class"`` of its native ``gymnasium.vector.VectorEnv``
            (``gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")``), for ids that have one.
        commands: ``"module:add_commands"``, a function ``add_commands(commands, data)`` adding the family's own
            subcommands to ``adaptstep`` and to ``adaptstep data``, or None.
        datasets: The names ``adaptstep data make NAME`` makes for this family -> ``"module:make_dataset"``, a
            function ``make_dataset(args, out)``.
        dataset_options: ``"module:add_dataset_options"``, adding the options of its datasets to ``data make``.
        checkpoints: The zoo kind of each checkpoint file the family trains -> ``"module:describe"``, a function
            ``describe(path)`` that loads the file and returns its ``{"task", "algo", "train_seconds"}``, or raises
            ValueError when the file is not of that kind (``adaptstep zoo add``).
        description: One line for ``adaptstep envs`` and the docs.
    """

    name: str
    envs: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, str | Callable[..., Any]] = field(default_factory=dict)
    task_specs: tuple[str, ...] = ()
    benchmark: str | None = None
    vector_envs: dict[str, str] = field(default_factory=dict)
    commands: str | None = None
    datasets: dict[str, str] = field(default_factory=dict)
    dataset_options: str | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)
    description: str = ""


_FAMILIES: dict[str, Family] = {}
_DISCOVERED = False


def load_object(reference: str | Any) -> Any:
    """The object a ``"module:attribute"`` string names (anything else is returned as it is)."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def register_family(family: Family) -> None:
    """Add ``family`` and register its env ids with Gymnasium (each wrapped in ``WallTime`` by ``gym.make``).

    An id with a vector env gets it as its ``vector_entry_point`` and ``WallTime`` from its entry point (``WallTimed``).

    Raises:
        ValueError: If another family already holds its name, one of its env ids or one of its baseline prefixes.
    """
    _discover()
    _register(family)


def _register(family: Family) -> None:
    known = _FAMILIES.get(family.name)
    if known is not None and known != family:
        raise ValueError(f"family name {family.name!r} is already registered")
    for other in _FAMILIES.values():
        if other.name == family.name:
            continue
        for kind, ours, theirs in (("env id", family.envs, other.envs), ("baseline", family.baselines,
                                                                         other.baselines)):
            clash = sorted(set(ours) & set(theirs))
            if clash:
                raise ValueError(f"{kind} {clash[0]!r} of family {family.name!r} is already family {other.name!r}'s")
    _FAMILIES[family.name] = family
    for env_id, entry_point in family.envs.items():
        if env_id in registry:
            continue
        if env_id in family.vector_envs:
            register(id=env_id, entry_point=WallTimed(entry_point), vector_entry_point=family.vector_envs[env_id])
        else:
            register(id=env_id, entry_point=entry_point, additional_wrappers=(WALL_TIME,))


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: entry.name):
        _register(entry.load())


def families() -> dict[str, Family]:
    """Every registered family by name."""
    _discover()
    return dict(_FAMILIES)


def env_ids() -> dict[str, Family]:
    """Every registered env id and its family."""
    return {env_id: family for family in families().values() for env_id in family.envs}


def family_of(env_id: str) -> Family:
    """The family of a registered env id.

    Raises:
        ValueError: If ``env_id`` is not registered, listing the known ids.
    """
    known = env_ids()
    if env_id not in known:
        raise ValueError(f"env id must be one of {sorted(known)}, got {env_id!r}")
    return known[env_id]


def env_class(env_id: str) -> type:
    """The registered env's class, without building an env (for class attributes such as ``cost_unit``)."""
    return load_env_creator(family_of(env_id).envs[env_id])


def env_kwarg_names(env_id: str) -> list[str]:
    """The keyword arguments the env's ``__init__`` takes (``gym.make`` passes them on)."""
    parameters = inspect.signature(env_class(env_id).__init__).parameters.values()
    return [parameter.name for parameter in parameters if parameter.name != "self"
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Check env kwargs before ``gym.make``, which would raise a bare ``TypeError`` from deep inside.

    Raises:
        ValueError: For an unknown env id or env kwargs the env does not take, naming the allowed ones.
    """
    allowed = env_kwarg_names(env_id)
    unknown = sorted(set(kwargs) - set(allowed) - {"render_mode"})
    if unknown:
        raise ValueError(f"{env_id} takes no env kwarg {unknown[0]!r}; it takes {allowed}")


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` after ``check_env_kwargs``: errors in the id or the kwargs are one line."""
    check_env_kwargs(env_id, kwargs)
    return gym.make(env_id, **kwargs)


def baseline_family(prefix: str) -> Family | None:
    """The family that registers the baseline ``prefix`` (``refresh`` -> robot).

    Returns:
        The family, or None for the family-free prefixes (``fixed``, ``random``) and unknown ones.
    """
    return next((family for family in families().values() if prefix in family.baselines), None)


def baselines() -> dict[str, str | Callable[..., Any]]:
    """Every baseline prefix of every family (``fixed``, ``ias15``, ``schedule``, ...) -> its factory."""
    return {prefix: factory for family in families().values() for prefix, factory in family.baselines.items()}


def benchmarks() -> dict[str, str]:
    """Every family's benchmark by family name."""
    return {name: family.benchmark for name, family in families().items() if family.benchmark}


def checkpoint_kinds() -> dict[str, Family]:
    """Every checkpoint kind a family declares (``planner``, ``dual-system``, ...) -> that family."""
    return {kind: family for family in families().values() for kind in family.checkpoints}
