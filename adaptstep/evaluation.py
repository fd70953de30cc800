"""The one evaluation harness: any controller on any env, over the same seeds, into one tidy table.

Rows are episodes: ``controller, seed, steps, return, cost, <the env's metrics>, <its summary and timing keys>,
wall_time, episode_seconds, failure, warning``, every value taken from the episode's final ``info`` (the env's
contract, ``adaptstep.core.contract.AdaptiveEnv``): ``failure`` says why an episode ended early, ``warning`` why
its metric cannot be trusted (e.g. a relative error against an initial value ≈ 0). The CLI, the notebooks and the
benchmarks all read this table; its ``attrs["metrics"]`` maps each metric to whether higher is better.

With ``out``, every finished episode's row is appended to a CSV file at once (and flushed), so an interrupted run
keeps every finished row; ``resume=True`` skips the (controller, seed) pairs the file already holds.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from adaptstep.agents.controllers import Controller, parse_controller
from adaptstep.core.contract import AdaptiveEnv
from adaptstep.core.executors import Executor, current_executor
from adaptstep.core.registry import check_env_kwargs, env_class, family_of, make_env
from adaptstep.core.stream import stream_row

FIXED_COLUMNS = ("controller", "seed", "steps", "return", "cost", "wall_time", "episode_seconds", "failure",
                 "warning")


def play_episode(env: gym.Env, controller: Controller, seed: int) -> dict[str, Any]:
    """Play one episode of ``controller`` on ``env`` from ``reset(seed=seed)``.

    Returns:
        The episode's table row (see the module docstring).
    """
    started = time.perf_counter()
    observation, info = env.reset(seed=seed)
    controller.reset(env, seed=seed)
    total_reward, steps, done = 0.0, 0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(controller.act(observation))
        total_reward += reward
        steps += 1
        done = terminated or truncated
    contract: AdaptiveEnv = env.unwrapped
    return {
        "controller": controller.name,
        "seed": seed,
        "steps": steps,
        "return": total_reward,
        "cost": info["cost"],
        **{key: info[key] for key in (*contract.metric_names, *contract.summary_keys, *contract.timing_keys)},
        "wall_time": info["wall_time"],
        "episode_seconds": time.perf_counter() - started,
        "failure": info.get("failure") or "",
        "warning": info.get("warning") or "",
    }


_WORKER_CACHE: dict[tuple[str, str, str], tuple[gym.Env, Controller]] = {}  # per process: built envs, controllers
WORKER_CACHE_SIZE = 4


def run_episodes(chunk: tuple[str, str, Mapping[str, Any], Sequence[int]]) -> tuple[list[dict[str, Any]],
                                                                                 dict[str, bool]]:
    """The harness rows of one chunk (env id, controller spec, env kwargs, seeds), for the executors.

    The chunk's episodes share one env and controller, and a worker keeps those it built (the last
    ``WORKER_CACHE_SIZE``), so a model is loaded once per worker, not once per episode.

    Returns:
        The rows, seeds ascending, and the env's metric directions (metric -> higher is better).
    """
    env_id, spec, settings, seeds = chunk
    key = (env_id, spec, repr(sorted(settings.items())))
    if key not in _WORKER_CACHE:
        if len(_WORKER_CACHE) >= WORKER_CACHE_SIZE:
            _WORKER_CACHE.pop(next(iter(_WORKER_CACHE)))[0].close()
        _WORKER_CACHE[key] = (make_env(env_id, **settings), parse_controller(spec, env_id))
    env, controller = _WORKER_CACHE[key]
    rows = [play_episode(env, controller, seed) for seed in seeds]
    return rows, {metric.name: metric.higher_is_better for metric in env.unwrapped.metrics}


def contiguous_shares(seeds: Sequence[int], parts: int) -> list[list[int]]:
    """``seeds`` cut into at most ``parts`` contiguous shares whose sizes differ by at most one."""
    size, extra = divmod(len(seeds), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [list(seeds[start:end]) for start, end in zip(bounds, bounds[1:]) if end > start]


def evaluate(
    env_id: str,
    controllers: Sequence[Controller | str],
    episodes: int = 10,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    out: str | Path | None = None,
    resume: bool = False,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Run each controller for ``episodes`` episodes on seeds seed, seed+1, ...

    Every controller sees the same seeds, hence the same initial states. A controller's ``env_overrides`` update
    ``env_kwargs`` for its episodes only. Every argument (the controllers, the env kwargs of each, ``out``) is
    checked before the first episode.

    Args:
        env_id: A registered env id (``adaptstep envs`` lists them).
        controllers: Controller objects or SPEC strings (``fixed:eta=0.01``, ``runs/x/model.zip``).
        episodes: Episodes per controller.
        seed: The first episode's seed (>= 0).
        env_kwargs: Keyword arguments of ``gym.make``.
        progress: Show a progress bar.
        out: A CSV file that receives each row as soon as its episode ends (replaced unless ``resume``).
        resume: Keep the rows ``out`` already holds and skip their (controller, seed) pairs.
        executor: Where the episodes run (``adaptstep.core.executors``); None for the one a ``use_executor``
            block set, else this process. Other executors than the serial one take SPEC strings only and give
            the same rows (``out`` then receives them in the order they finish).

    Returns:
        One row per episode (see the module docstring), controllers in the order given, seeds ascending; with
        ``resume`` the rows read back from ``out`` are among them.

    Raises:
        ValueError: If ``episodes`` or ``seed`` is out of range, the env id is unknown, a controller SPEC does not
            parse, no controller is given, two share a name, a controller's env kwargs are not the env's, or
            ``out`` cannot be written or resumed.
    """
    if isinstance(episodes, bool) or not (isinstance(episodes, int) and episodes >= 1):
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if isinstance(seed, bool) or not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    family_of(env_id)  # one line for an unknown env id
    resolved = [parse_controller(controller, env_id) if isinstance(controller, str) else controller
                for controller in controllers]
    if not resolved:
        raise ValueError("controllers must name at least one controller")
    names = [controller.name for controller in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"controllers must have distinct names, got {names}")
    kwargs = [{**dict(env_kwargs or {}), **controller.env_overrides} for controller in resolved]
    for controller, settings in zip(resolved, kwargs):
        try:
            check_env_kwargs(env_id, settings)
        except ValueError as error:
            raise ValueError(f"{error} (controller {controller.name!r})") from None
    sink = RowFile(out, resume) if out is not None else None
    finished = sink.finished if sink is not None else set()
    rows, directions = [], {metric.name: metric.higher_is_better for metric in env_class(env_id).metrics}
    seeds = [seed + episode for episode in range(episodes)]
    executor = executor or current_executor()
    if executor.name != "serial":
        strings = [controller for controller in controllers if isinstance(controller, str)]
        if len(strings) != len(controllers):
            raise ValueError(f"executor {executor.name!r} runs controllers given as SPEC strings only (a worker "
                             "builds its own from the spec); pass specs, or use the serial executor")
    try:
        with tqdm(total=episodes * len(resolved), desc="evaluate", unit="episode", disable=not progress) as bar:
            bar.update(sum((name, s) in finished for name in names for s in seeds))
            play = _play_serial if executor.name == "serial" else _play_on(executor)
            play(env_id, resolved, kwargs, seeds, finished, sink, rows, directions, bar)
    finally:
        if sink is not None:
            sink.close()
    if finished:  # resumed: the rows of the file, this run's among them, in the order of a fresh run
        table = read_rows(out)
        order = {name: index for index, name in enumerate(names)}
        table = table[table["controller"].isin(order) & table["seed"].isin(seeds)]
        table = table.sort_values(["controller", "seed"], key=lambda column: column.map(order)
                                  if column.name == "controller" else column, kind="stable").reset_index(drop=True)
    else:
        table = pd.DataFrame(rows)
    table.attrs["metrics"] = directions
    return table


def _play_serial(env_id: str, controllers: list[Controller], kwargs: list[dict[str, Any]], seeds: list[int],
                 finished: set[tuple[str, int]], sink: RowFile | None, rows: list[dict[str, Any]],
                 directions: dict[str, bool], bar: tqdm) -> None:
    """Play the pending episodes here, one env per controller, appending to ``rows`` and ``sink``."""
    for controller, settings in zip(controllers, kwargs):
        pending = [s for s in seeds if (controller.name, s) not in finished]
        if not pending:
            continue
        env = make_env(env_id, **settings)
        directions.update({metric.name: metric.higher_is_better for metric in env.unwrapped.metrics})
        try:
            if sink is not None:
                sink.expect(row_columns(env))
            for episode_seed in pending:
                row = play_episode(env, controller, episode_seed)
                rows.append(row)
                stream_row(row)  # a benchmark's stream, if one is open
                if sink is not None:
                    sink.write(row)
                bar.update()
        finally:
            env.close()


def _play_on(executor: Executor):
    """A function like ``_play_serial`` that runs the pending episodes on ``executor`` and leaves ``rows`` in the
    serial order: controllers as given, seeds ascending.

    Each controller's pending seeds are cut into one contiguous share per worker (``contiguous_shares``), each a
    ``run_episodes`` chunk: every worker gets a share of every controller and builds its env once per share.
    """

    def play(env_id: str, controllers: list[Controller], kwargs: list[dict[str, Any]], seeds: list[int],
             finished: set[tuple[str, int]], sink: RowFile | None, rows: list[dict[str, Any]],
             directions: dict[str, bool], bar: tqdm) -> None:
        chunks = [(env_id, controller.name, settings, share)
                  for controller, settings in zip(controllers, kwargs)
                  for share in contiguous_shares([s for s in seeds if (controller.name, s) not in finished],
                                                 executor.workers)]
        for chunk_rows, found in executor.map(run_episodes, chunks):
            directions.update(found)
            for row in chunk_rows:
                rows.append(row)
                stream_row(row)
                if sink is not None:
                    sink.expect(list(row))
                    sink.write(row)
                bar.update()
        order = {controller.name: index for index, controller in enumerate(controllers)}
        rows.sort(key=lambda row: (order[row["controller"]], row["seed"]))

    return play


def row_columns(env: gym.Env) -> list[str]:
    """The columns of ``play_episode``'s rows on ``env``, in order."""
    contract: AdaptiveEnv = env.unwrapped
    return [*FIXED_COLUMNS[:5], *contract.metric_names, *contract.summary_keys, *contract.timing_keys,
            *FIXED_COLUMNS[5:]]


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a harness table written by ``evaluate(out=...)`` (or ``adaptstep evaluate --out``).

    Returns:
        The table, with empty ``failure`` and ``warning`` cells as "" again.
    """
    table = pd.read_csv(path)
    for column in ("failure", "warning"):
        if column in table:
            table[column] = table[column].astype("string").fillna("").astype(object)
    return table


class RowFile:
    """The CSV file ``evaluate`` streams its rows into.

    It is checked and opened before the first episode; one row is appended and flushed per finished episode.

    Args:
        path: The CSV file.
        resume: Keep the rows the file holds (``finished`` lists their (controller, seed) pairs) and append;
            else the file is replaced.

    Attributes:
        finished: The (controller, seed) pairs of the rows kept from a resumed file.
        columns: The file's columns, None until known.

    Raises:
        ValueError: If ``path`` is a folder, lies under a file, cannot be written, or (with ``resume``) holds rows of
            another table.
    """

    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        self.finished: set[tuple[str, int]] = set()
        self.columns: list[str] | None = None
        if self.path.is_dir():
            raise ValueError(f"--out {self.path} is a folder; name a CSV file")
        if resume and self.path.is_file() and self.path.stat().st_size > 0:
            try:
                existing = pd.read_csv(self.path)
            except (ValueError, pd.errors.ParserError) as error:
                raise ValueError(f"cannot resume from {self.path}: not a harness CSV ({error})") from None
            if not {"controller", "seed"} <= set(existing.columns):
                raise ValueError(f"cannot resume from {self.path}: it has no controller and seed columns")
            self.columns = list(existing.columns)
            self.finished = {(str(name), int(seed)) for name, seed in zip(existing["controller"], existing["seed"])}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a" if self.columns else "w", newline="")
        except OSError as error:
            raise ValueError(f"cannot write --out {self.path}: {error.strerror or error}") from None
        self.writer = csv.writer(self.file)

    def expect(self, columns: list[str]) -> None:
        """Write the header, or check that a resumed file has these columns."""
        if self.columns is None:
            self.columns = list(columns)
            self.writer.writerow(self.columns)
            self.file.flush()
        elif self.columns != list(columns):
            raise ValueError(f"cannot resume {self.path}: its columns {self.columns} differ from this run's "
                             f"{list(columns)}")

    def write(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` (its keys must be the columns) and flush it to the file."""
        self.writer.writerow(["" if row[column] is None else row[column] for column in self.columns])
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()


def metric_directions(table: pd.DataFrame, env_id: str | None = None) -> dict[str, bool]:
    """Each metric column of a harness table -> whether higher is better.

    Args:
        table: A harness table.
        env_id: Its env, read only when ``table.attrs`` (set by ``evaluate``) lacks the metrics, as for a table
            read back from CSV.

    Raises:
        ValueError: If the table has no ``attrs["metrics"]`` and ``env_id`` is None.
    """
    if table.attrs.get("metrics"):
        return dict(table.attrs["metrics"])
    if env_id is None:
        raise ValueError("env_id must name the table's env (a table read from CSV does not say which metrics "
                         "it holds)")
    return {metric.name: metric.higher_is_better for metric in env_class(env_id).metrics
            if metric.name in table.columns}


def summarize(table: pd.DataFrame, env_id: str | None = None) -> pd.DataFrame:
    """Summarise a harness table per controller, marking its Pareto front.

    Failed episodes count in the medians with the value at failure (a failure cannot hide). A controller with a
    failed episode or one whose metric cannot be trusted (a ``warning``) is never on the Pareto front, and it does
    not push others off it: the front is that of the controllers whose every episode finished with a trusted
    metric.

    Args:
        table: A harness table (``evaluate``'s or one read back with ``read_rows``).
        env_id: Its env, needed only for a table read back from CSV (see ``metric_directions``).

    Returns:
        One row per controller: episodes, failures, warnings, median and IQR of cost and every metric, mean
        return, median wall time, and ``pareto``, which marks the controllers no other beats in median cost and
        median first metric (in the metric's direction).
    """
    directions = metric_directions(table, env_id)
    metrics = list(directions)

    def flagged(group: pd.DataFrame, column: str) -> pd.Series:
        if column not in group:
            return pd.Series(False, index=group.index)
        return group[column].astype("string").fillna("") != ""  # a CSV read back holds NaN for ""

    def describe(group: pd.DataFrame) -> pd.Series:
        out: dict[str, Any] = {"episodes": len(group), "failures": int(flagged(group, "failure").sum()),
                               "warnings": int(flagged(group, "warning").sum())}
        for column in ["cost", *metrics]:
            values = group[column].to_numpy(dtype=float)
            q25, median, q75 = np.nanpercentile(values, [25, 50, 75])
            out[f"{column}_median"], out[f"{column}_q25"], out[f"{column}_q75"] = median, q25, q75
        out["return_mean"] = group["return"].mean()
        out["wall_time_median"] = group["wall_time"].median()
        return pd.Series(out)

    summary = table.groupby("controller", sort=False).apply(describe, include_groups=False)
    quality = summary[f"{metrics[0]}_median"].to_numpy(dtype=float)
    trusted = ((summary["failures"] == 0) & (summary["warnings"] == 0)).to_numpy()
    pareto = np.zeros(len(summary), dtype=bool)
    pareto[trusted] = pareto_mask(summary["cost_median"].to_numpy()[trusted],
                                  (-quality if directions[metrics[0]] else quality)[trusted])
    summary["pareto"] = pareto
    return summary


def pareto_mask(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True where no other point has both cost and error <= and one of them < (lower is better)."""
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    dominated = (cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])
    return ~np.any(dominated & strictly, axis=1)
