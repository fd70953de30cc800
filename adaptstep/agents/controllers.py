"""The controller protocol, trained SB3 models as controllers, and the ``--controller SPEC`` grammar.

SPEC is ``NAME[:value][,key=value,...][@env_kwarg=value,...]``: a baseline (``fixed:eta=0.01``, ``random``, or one
that a family registers: ``ias15:epsilon=1e-9``, ``schedule:logsnr_uniform,solver=dpmpp2m``), the path of a
saved model (``runs/demo/model.zip``) or a shipped one (``zoo:threebody-ppo``, see ``adaptstep.zoo``); a leading
value without ``=`` reaches the baseline as ``value``. The part after ``@`` overrides env kwargs for this controller
only (e.g. ``runs/demo/model.zip@backend=rebound-ias15`` evaluates a Hermite-trained policy on IAS15).
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import yaml

from adaptstep.agents.baselines import BASELINES
from adaptstep.core.registry import baseline_family
from adaptstep.core.registry import baselines as family_baselines
from adaptstep.core.registry import env_class, load_object
from adaptstep.core.settings import parse_settings, require_bool, require_number

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecNormalize

ALGORITHMS = ("ppo", "sac", "dqn")
RUN_FILE = "run.yaml"  # written by ``adaptstep train`` beside model.zip
VECNORMALIZE_FILE = "vecnormalize.pkl"  # beside model.zip when training normalised observations
BEST_MODEL_FILE = "best_model.zip"  # the best model on the held-out evaluations (``--eval-freq``)
BEST_VECNORMALIZE_FILE = "best_vecnormalize.pkl"  # its statistics


@runtime_checkable
class Controller(Protocol):
    """Anything that maps an observation to an action."""

    name: str
    env_overrides: Mapping[str, Any]

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Called at the start of every episode with the (wrapped) env it will act on."""

    def act(self, observation: np.ndarray) -> Any:
        """The action for ``observation``."""


def model_file(path: str | Path) -> Path:
    """The model file a path or a ``zoo:NAME`` spec names (a zoo file is checked against its sha256)."""
    if str(path).startswith("zoo:"):
        from adaptstep.zoo.store import resolve_agent  # here: the zoo imports this module

        return resolve_agent(str(path))[0]
    return Path(path)


def run_record(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The ``run.yaml`` of a model saved by ``adaptstep train``, and its contents.

    Args:
        path: The model file (or ``zoo:NAME``); its ``run.yaml`` lies beside it, or one folder up for
            ``checkpoints/*.zip``.

    Returns:
        The ``run.yaml`` path and its contents.

    Raises:
        FileNotFoundError: If there is no ``run.yaml``.
        ValueError: If it is not valid YAML or not a mapping.
    """
    path = model_file(path)
    candidates = [path.parent / RUN_FILE, path.parent.parent / RUN_FILE]
    run_file = next((candidate for candidate in candidates if candidate.is_file()), None)
    if run_file is None:
        raise FileNotFoundError(f"{candidates[0]} is missing: it names the algorithm of {path} "
                                "(written by `adaptstep train`)")
    try:
        run = yaml.safe_load(run_file.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{run_file} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(run, dict):
        raise ValueError(f"{run_file} must be a mapping (written by `adaptstep train`), got {type(run).__name__}")
    return run_file, run


def trained_agent_kwargs(path: str | Path) -> dict[str, Any]:
    """The env kwargs a model was trained with that define its observations and actions.

    These are the env class's ``agent_kwargs`` (e.g. the budget env's action encoding), so that evaluation uses
    the same ones.
    """
    _, run = run_record(path)
    if "env_id" not in run:
        return {}
    trained = run.get("env_kwargs") or {}
    return {key: trained[key] for key in getattr(env_class(run["env_id"]), "agent_kwargs", ()) if key in trained}


def agent_provenance(path: str) -> str:
    """One line on how an agent (a model file or ``zoo:NAME``) was trained, from its ``run.yaml``."""
    run_file = model_file(path).parent / RUN_FILE
    if not run_file.is_file():
        return f"- `{path}`: no {RUN_FILE} beside it"
    run = yaml.safe_load(run_file.read_text())
    kwargs = ", ".join(f"{key}={value}" for key, value in run.get("env_kwargs", {}).items())
    algo, steps, seed = str(run.get("algo", "?")).upper(), run.get("timesteps", "?"), run.get("seed")
    return f"- `{path}`: {algo}, {steps} steps, seed {seed}, {kwargs}"


def observation_normalizer(path: str | Path) -> VecNormalize | None:
    """The VecNormalize statistics a model was trained with, frozen.

    They are ``vecnormalize.pkl`` beside ``model.zip``, ``best_vecnormalize.pkl`` beside ``best_model.zip``, or ``model_vecnormalize_N_steps.pkl`` beside checkpoint
    ``model_N_steps.zip``.

    Returns:
        The statistics, or None if the model was trained without normalisation.

    Raises:
        ValueError: If the run's ``run.yaml`` says it normalised but the file is missing, or the file is corrupt.
    """
    path = Path(path)
    named = {"model.zip": VECNORMALIZE_FILE, BEST_MODEL_FILE: BEST_VECNORMALIZE_FILE}
    name = named.get(path.name) or path.name.replace("model_", "model_vecnormalize_", 1)
    stats = path.with_name(name).with_suffix(".pkl")
    if not stats.is_file():
        try:
            run_file, run = run_record(path)
        except FileNotFoundError:
            return None
        normalize = ((run or {}).get("hyperparameters") or {}).get("normalize", False)
        if normalize not in (False, None):
            raise ValueError(f"{stats} is missing, but {run_file} says the model was trained on normalised "
                             "observations (normalize: true); restore the file or retrain")
        return None
    try:
        with stats.open("rb") as file:
            return pickle.load(file)  # VecNormalize without its venv: normalize_obs needs none
    except Exception as error:  # a truncated or foreign pickle raises any of several types
        raise ValueError(f"{stats} is not a readable VecNormalize file (corrupt or truncated?): "
                         f"{type(error).__name__}: {error}; restore it or retrain") from None


def load_agent(path: str | Path, device: str = "auto"):
    """Load an SB3 model saved by ``adaptstep train``; the algorithm is read from the run's ``run.yaml``.

    Args:
        path: The model file (``model.zip`` or a checkpoint), or ``zoo:NAME`` for a shipped agent.
        device: The torch device, ``"auto"`` for SB3's choice.

    Raises:
        FileNotFoundError: If the model file or its ``run.yaml`` is missing.
        ValueError: If ``run.yaml`` names an unknown algorithm, the model file is unreadable, or a zoo file fails
            its sha256 check.
    """
    path = model_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    run_file, run = run_record(path)
    algo = str(run["algo"])
    if algo not in ALGORITHMS:
        raise ValueError(f"algo in {run_file} must be one of {list(ALGORITHMS)}, got {algo!r}")
    import stable_baselines3  # here, not at the top: it imports torch, which specs of baselines never need

    try:
        return getattr(stable_baselines3, algo.upper()).load(path, device=device)
    except Exception as error:  # zipfile, torch and pickle each raise their own types for a damaged file
        raise ValueError(f"{path} is not a readable {algo.upper()} model (corrupt or truncated?): "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; "
                         "use another checkpoint or retrain") from None


class ModelController:
    """A trained stable-baselines3 model acting deterministically.

    It sees observations normalised as in its training (``observation_normalizer``) if they were. Its env
    overrides start from the trained env kwargs that define observations and actions (``trained_agent_kwargs``);
    overrides after '@' in its spec come on top.

    Models trained on a Box action space act in [-1, 1] (training rescales the env's Box, as SB3
    recommends); their actions are mapped linearly onto the evaluated env's own Box, so a policy
    trained on one backend can drive another (the reference paper's transfer experiment).

    Args:
        name: The controller's name in the harness table (its spec).
        path: The saved model (see ``load_agent``).
        env_overrides: Env kwargs for this controller's episodes, on top of the trained ones; None for none.
        device: The torch device, ``"auto"`` for SB3's choice.
    """

    def __init__(self, name: str, path: str | Path, env_overrides: Mapping[str, Any] | None = None,
                 device: str = "auto"):
        self.name = name
        self.path = Path(path)
        self.model = load_agent(self.path, device)
        self.normalizer = observation_normalizer(self.path)
        self.env_overrides = {**trained_agent_kwargs(self.path), **dict(env_overrides or {})}
        self._scale: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # model and env bounds

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Check the env's spaces against the model's and prepare the action mapping.

        Raises:
            ValueError: If the env's observation or action space does not fit the model's.
        """
        model_space, env_space = self.model.action_space, env.action_space
        if env.observation_space.shape != self.model.observation_space.shape:
            raise ValueError(
                f"model {self.path} expects observations of shape {self.model.observation_space.shape}, the env gives "
                f"{env.observation_space.shape}; pass the env kwargs it was trained with (see {RUN_FILE}) after '@'"
            )
        if isinstance(model_space, gym.spaces.Box) and isinstance(env_space, gym.spaces.Box):
            if model_space.shape != env_space.shape:
                raise ValueError(f"model {self.path} acts in shape {model_space.shape}, the env in {env_space.shape}")
            self._scale = (model_space.low, model_space.high, env_space.low, env_space.high)
        elif model_space == env_space:
            self._scale = None
        else:
            raise ValueError(
                f"model {self.path} acts in {model_space}, the env in {env_space}; "
                f"pass the env kwargs it was trained with (see {RUN_FILE}) after '@'"
            )

    def act(self, observation: np.ndarray) -> Any:
        """The model's deterministic action, mapped onto the env's action space."""
        if self.normalizer is not None:
            observation = self.normalizer.normalize_obs(observation)
        action, _ = self.model.predict(observation, deterministic=True)
        if self._scale is None:
            return action
        low, high, env_low, env_high = self._scale
        fraction = (np.clip(action, low, high) - low) / (high - low)
        return (env_low + fraction * (env_high - env_low)).astype(np.float32)


def parse_controller(spec: str, env_id: str | None = None) -> Controller:
    """Build a controller from SPEC (see the module docstring).

    Args:
        spec: The controller spec.
        env_id: The env it will drive, if known: a baseline of another family (one a family registers for its
            own envs only) is then an error naming the env ids it fits.

    Raises:
        ValueError: For any spec that does not build, naming the spec and the part that is wrong (a missing model
            file too); no other exception type.
    """
    if not isinstance(spec, str):
        raise ValueError(f"controller must be a SPEC string, got {spec!r}")
    head, _, overrides_text = spec.partition("@")
    env_overrides = parse_settings(overrides_text, f"env overrides in controller {spec!r}")
    if head.startswith("zoo:"):  # a shipped agent
        from adaptstep.zoo.store import resolve_agent  # here: the zoo loads torch and imports this module

        path, recorded = resolve_agent(head)
        if env_id is not None:
            _check_trained_env(str(path), env_id)
        return ModelController(spec, path, {**recorded, **env_overrides})
    if head.endswith(".zip") or _is_file(head):
        if not _is_file(head):
            raise ValueError(f"controller {spec!r}: model file not found: {head}")
        if env_id is not None:
            _check_trained_env(head, env_id)
        return ModelController(spec, head, env_overrides)
    name, _, arguments = head.partition(":")
    factories = {**BASELINES, **family_baselines()}
    if name not in factories:
        raise ValueError(
            f"controller must be a saved model (.zip) or one of the baselines {sorted(factories)}, got {spec!r}"
        )
    if env_id is not None:
        owner = baseline_family(name)
        if owner is not None and env_id not in owner.envs:
            raise ValueError(f"controller {spec!r} is a baseline of the {owner.name} family: it fits "
                             f"{sorted(owner.envs)}, not {env_id}")
    first, _, rest = arguments.partition(",")
    positional = bool(first) and "=" not in first  # schedule:logsnr_uniform,solver=dpmpp2m
    kwargs = parse_settings(rest if positional else arguments, f"arguments of controller {spec!r}")
    if positional:
        kwargs["value"] = first
    factory = load_object(factories[name])
    _check_arguments(spec, factory, kwargs)
    try:
        return factory(name=spec, env_overrides=env_overrides, **kwargs)
    except (ValueError, TypeError) as error:
        message = str(error)
        raise ValueError(message if repr(spec) in message else f"controller {spec!r}: {message}") from None


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _check_arguments(spec: str, factory: Any, kwargs: dict[str, Any]) -> None:
    """A ValueError naming the spec and the argument when ``kwargs`` name one ``factory`` does not take or give
    a value of the wrong type (by the factory's annotations: float, int, bool, optionally None)."""
    parameters = {name: parameter for name, parameter in inspect.signature(factory).parameters.items()
                  if name not in ("name", "env_overrides")}
    variadic = next((parameter for parameter in parameters.values() if parameter.kind == parameter.VAR_KEYWORD), None)
    named = [name for name, parameter in parameters.items() if parameter.kind != parameter.VAR_KEYWORD]
    missing = [name for name in named if parameters[name].default is parameters[name].empty and name not in kwargs]
    if missing:
        what = "a leading value (NAME:VALUE,...)" if missing == ["value"] else f"the arguments {missing}"
        raise ValueError(f"controller {spec!r} needs {what}")
    for key, value in kwargs.items():
        if key == "value" and key not in parameters and variadic is not None:
            continue  # a leading value for a factory of PARAM=VALUE pairs: it says what it takes
        parameter = parameters.get(key, variadic)
        if parameter is None:
            allowed = [name for name in named if name != "value"]
            if key == "value":
                raise ValueError(f"controller {spec!r} takes no leading value {value!r}, only KEY=VALUE arguments "
                                 f"among {allowed}")
            raise ValueError(f"controller {spec!r} takes no argument {key!r}; it takes {allowed}")
        annotation = str(parameter.annotation).replace(" ", "")
        optional = annotation.endswith("|None") and value is None
        kind = annotation.removesuffix("|None")
        if optional or kind not in ("float", "int", "bool"):
            continue
        what = f"{key} of controller {spec!r}"
        if kind == "float":
            require_number(what, value)
        elif kind == "int" and (isinstance(value, bool) or not (isinstance(value, int) or (
                isinstance(value, float) and value.is_integer()))):
            raise ValueError(f"{what} must be an int, got {value!r}")
        elif kind == "bool":
            kwargs[key] = require_bool(what, value)


def _check_trained_env(path: str, env_id: str) -> None:
    """A ValueError when the model's ``run.yaml`` names another env id than the one it is evaluated on."""
    try:
        run_file, run = run_record(path)
    except FileNotFoundError:
        return  # ModelController names the missing run.yaml
    trained = run.get("env_id") if isinstance(run, dict) else None
    if trained is not None and trained != env_id:
        raise ValueError(f"model {path} was trained on {trained} ({run_file}), not {env_id}; evaluate it there")
