"""Hyperparameter search with Optuna, as rl-baselines3-zoo's ``--optimize``: TPE sampler, median pruner.

Each trial samples the algorithm's usual search space (rl-zoo's ``hyperparams_opt.py``: PPO, SAC, DQN) on top of
the env's entry in ``agents/<algo>.yml`` (its env kwargs, ``n_envs`` and normalisation stay), trains with
``adaptstep.agents.training.train`` and reports the held-out evaluations' median of the env's first metric to the
trial (``HeldOutEvaluation``), so the median pruner can stop it; the objective is that metric's median over
``eval_episodes`` held-out episodes of the final model, through the harness (``evaluate``), in the metric's
direction. Trials of one study may run in several processes or on several machines that share ``storage`` (an
Optuna storage URL such as ``sqlite:///study.db`` or ``postgresql://...``): several ``adaptstep optimize``
commands, or one whose executor (``--workers``, ``--executor ray``) runs the trials as parallel tasks. The best trial's hyperparameters are
written as an ``agents/*.yml`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adaptstep.agents.eval_callback import EVAL_SEED
from adaptstep.agents.training import check_hyperparameters, config_file, hyperparameters, train
from adaptstep.core.executors import Executor, SerialExecutor
from adaptstep.core.registry import env_class
from adaptstep.evaluation import evaluate
from adaptstep.io import atomic_write_text

NET_ARCHS = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}


def sample_ppo(trial: Any) -> dict[str, Any]:
    """rl-zoo's PPO space: batch and rollout sizes, gamma, learning rate, entropy, clipping, epochs, GAE lambda,
    gradient clipping, value coefficient and network size (the activation stays the entry's: YAML entries name no
    classes)."""
    batch_size = trial.suggest_categorical("batch_size", [8, 16, 32, 64, 128, 256, 512])
    n_steps = trial.suggest_categorical("n_steps", [8, 16, 32, 64, 128, 256, 512, 1024, 2048])
    return {
        "batch_size": batch_size, "n_steps": max(n_steps, batch_size),
        "gamma": trial.suggest_categorical("gamma", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1.0, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4]),
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "gae_lambda": trial.suggest_categorical("gae_lambda", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
        "max_grad_norm": trial.suggest_categorical("max_grad_norm", [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 2, 5]),
        "vf_coef": trial.suggest_float("vf_coef", 0, 1),
        "policy_kwargs": _network(trial),
    }


def sample_sac(trial: Any) -> dict[str, Any]:
    """rl-zoo's SAC space: gamma, learning rate, batch and buffer sizes, learning starts, train frequency, tau,
    network size."""
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 32, 64, 128, 256, 512])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1.0, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256, 512, 1024, 2048]),
        "buffer_size": trial.suggest_categorical("buffer_size", [int(1e4), int(1e5), int(1e6)]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 1000, 10000, 20000]),
        "train_freq": train_freq, "gradient_steps": train_freq,
        "tau": trial.suggest_categorical("tau", [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]),
        "policy_kwargs": {"net_arch": NET_ARCHS[trial.suggest_categorical("net_arch", ["small", "medium"])]},
    }


def sample_dqn(trial: Any) -> dict[str, Any]:
    """rl-zoo's DQN space: gamma, learning rate, batch and buffer sizes, exploration, target updates, learning
    starts, train frequency, network size."""
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 128, 256, 1000])
    return {
        "gamma": trial.suggest_categorical("gamma", [0.9, 0.99, 0.995, 0.999, 0.9999]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1.0, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 100, 128, 256, 512]),
        "buffer_size": trial.suggest_categorical("buffer_size", [int(1e4), int(5e4), int(1e5), int(1e6)]),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0, 0.2),
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0, 0.5),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [1, 1000, 5000, 10000,
                                                                                      15000, 20000]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 1000, 5000, 10000, 20000]),
        "train_freq": train_freq,
        "gradient_steps": max(train_freq // trial.suggest_categorical("subsample_steps", [1, 2, 4, 8]), 1),
        "policy_kwargs": {"net_arch": NET_ARCHS[trial.suggest_categorical("net_arch", ["tiny", "small",
                                                                                       "medium"])]},
    }


def _network(trial: Any) -> dict[str, Any]:
    arch = NET_ARCHS[trial.suggest_categorical("net_arch", ["small", "medium"])]
    return {"net_arch": {"pi": arch, "vf": arch}}


SAMPLERS: dict[str, Callable[[Any], dict[str, Any]]] = {"ppo": sample_ppo, "sac": sample_sac, "dqn": sample_dqn}


def trial_params(base: Mapping[str, Any], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The env's entry with the sampled keys on top (``policy_kwargs`` merged key by key)."""
    params = {**base, **{key: value for key, value in sampled.items() if key != "policy_kwargs"}}
    if "policy_kwargs" in sampled:
        params["policy_kwargs"] = {**dict(base.get("policy_kwargs") or {}), **sampled["policy_kwargs"]}
    return params


@dataclass(frozen=True)
class Search:
    """One study's settings; picklable, so that executor workers can run its trials.

    Attributes:
        env_id: A registered env id.
        algo: ``ppo``, ``sac`` or ``dqn``.
        base: The env's entry the trials start from.
        timesteps: Training steps per trial.
        out_dir: Folder of the trials' run folders (``trial_<N>``).
        storage: An Optuna storage URL, or None for a study in memory.
        study_name: The study's name in ``storage``.
        every: Steps between the held-out evaluations reported for pruning.
        eval_episodes: Held-out episodes per evaluation and for the objective.
        seed: The trials' training seed.
        startup_trials: Trials before the TPE sampler models the space and the median pruner prunes.
        warmup_evaluations: Evaluations of a trial before it may be pruned.
    """

    env_id: str
    algo: str
    base: dict[str, Any]
    timesteps: int
    out_dir: Path
    storage: str | None
    study_name: str
    every: int
    eval_episodes: int
    seed: int
    startup_trials: int
    warmup_evaluations: int

    def study(self, sampler_seed: int) -> Any:
        """The study (made or loaded from ``storage``) with a TPE sampler seeded ``sampler_seed``."""
        import optuna  # an optional dependency (the scale extra)

        higher = env_class(self.env_id).metrics[0].higher_is_better
        return optuna.create_study(
            storage=self.storage, study_name=self.study_name, load_if_exists=True,
            direction="maximize" if higher else "minimize",
            sampler=optuna.samplers.TPESampler(n_startup_trials=self.startup_trials, seed=sampler_seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials,
                                               n_warmup_steps=self.warmup_evaluations * self.every))

    def objective(self, trial: Any) -> float:
        """Train the trial's hyperparameters, reporting held-out evaluations; its final model's held-out metric."""
        import optuna  # an optional dependency (the scale extra)

        metric = env_class(self.env_id).metrics[0].name
        params = trial_params(self.base, SAMPLERS[self.algo](trial))
        params["n_timesteps"] = self.timesteps
        check_hyperparameters(params, self.algo, f"trial {trial.number}")
        run = self.out_dir / f"trial_{trial.number}"
        trial_config = run / "config.yml"
        atomic_write_text(trial_config, yaml.safe_dump({self.env_id: params}, sort_keys=False))

        def report(row: Mapping[str, float]) -> None:
            trial.report(trial_value(row, metric), int(row["timesteps"]))
            if trial.should_prune():
                raise optuna.TrialPruned()

        train(self.env_id, self.algo, run, config=trial_config, timesteps=self.timesteps, seed=self.seed,
              progress_bar=False, overwrite=True, eval_freq=self.every, eval_episodes=self.eval_episodes,
              on_evaluation=report)
        table = evaluate(self.env_id, [str(run / "model.zip")], episodes=self.eval_episodes, seed=EVAL_SEED,
                         progress=False, executor=SerialExecutor())
        return float(table[metric].median())


def run_trials(task: tuple[Search, int, int]) -> int:
    """Run ``trials`` trials of the search with a sampler seeded ``sampler_seed`` (an executor task).

    Args:
        task: (search, trials, sampler seed).

    Returns:
        The number of trials run.
    """
    search, trials, sampler_seed = task
    search.study(sampler_seed).optimize(search.objective, n_trials=trials, catch=())
    return trials


def optimize(env_id: str, algo: str, trials: int, timesteps: int, out_dir: str | Path, yaml_out: str | Path,
             config: str | Path | None = None, storage: str | None = None, study_name: str | None = None,
             eval_freq: int | None = None, eval_episodes: int = 5, seed: int = 0, startup_trials: int = 5,
             warmup_evaluations: int = 1, executor: Executor | None = None) -> Any:
    """Run ``trials`` trials of a study and write the best hyperparameters as a YAML entry.

    Args:
        env_id: A registered env id.
        algo: ``ppo``, ``sac`` or ``dqn``.
        trials: Trials this call runs (>= 1); processes sharing ``storage`` add theirs to one study.
        timesteps: Training steps per trial.
        out_dir: Folder of the trials' run folders (``trial_<N>``).
        yaml_out: The YAML file to write (``{env_id: best entry}``, with the objective in a comment).
        config: The hyperparameter YAML whose entry the trials start from; None for ``agents/<algo>.yml``.
        storage: An Optuna storage URL shared by several processes or machines; None keeps the study in memory.
        study_name: The study's name in ``storage`` (default ``<env>-<algo>``).
        eval_freq: Steps between the held-out evaluations reported for pruning (default a quarter of the run).
        eval_episodes: Held-out episodes per evaluation and for the objective.
        seed: The TPE sampler's and the trials' training seed.
        startup_trials: Trials before the TPE sampler models the space and the median pruner prunes.
        warmup_evaluations: Evaluations of a trial before it may be pruned.
        executor: Runs the trials as parallel tasks, one trial each with its own sampler seed (needs
            ``storage``); None or a serial executor runs them here, one after another.

    Returns:
        The Optuna study.

    Raises:
        ValueError: For a bad algorithm, trial count or step count, a parallel executor without storage, or when
            no trial completes.
    """
    import optuna  # an optional dependency (the scale extra)

    if algo not in SAMPLERS:
        raise ValueError(f"algo must be one of {list(SAMPLERS)}, got {algo!r}")
    for name, value in (("trials", trials), ("timesteps", timesteps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    executor = executor or SerialExecutor()
    if executor.name != "serial" and storage is None:
        raise ValueError(f"--executor {executor.name} runs trials in other processes: pass --storage (e.g. "
                         "sqlite:///study.db) so that they share one study")
    search = Search(env_id, algo, hyperparameters(algo, env_id, config), timesteps, Path(out_dir), storage,
                    study_name or f"{env_id.split('/')[-1]}-{algo}", eval_freq or max(timesteps // 4, 1),
                    eval_episodes, seed, startup_trials, warmup_evaluations)
    study = search.study(seed)  # made here first: workers creating one study at once collide in the storage
    if executor.name == "serial":
        study.optimize(search.objective, n_trials=trials, catch=())
    else:
        list(executor.map(run_trials, [(search, 1, seed + index) for index in range(trials)]))
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ValueError(f"no trial of study {study.study_name!r} completed (all pruned or failed)")
    best = trial_params(search.base, _replay(algo, study.best_trial))
    best["n_timesteps"] = search.base.get("n_timesteps", timesteps)
    metric = env_class(env_id).metrics[0].name
    header = (f"# adaptstep optimize {env_id} --algo {algo}: best of {len(study.trials)} trials, trial "
              f"{study.best_trial.number}, {metric} median {study.best_value:.6g} on {eval_episodes} held-out "
              f"episodes after {timesteps} steps (from {config_file(algo, config)})\n")
    atomic_write_text(yaml_out, header + yaml.safe_dump({env_id: best}, sort_keys=False))
    return study


def trial_value(row: Mapping[str, float], metric: str) -> float:
    """The value a held-out evaluation reports to its trial: the median of the env's first metric."""
    return float(row[f"{metric}_median"])


def _replay(algo: str, trial: Any) -> dict[str, Any]:
    """The sampled hyperparameters of a finished trial (its sampler run again on its fixed parameters)."""
    import optuna  # an optional dependency (the scale extra)

    return SAMPLERS[algo](optuna.trial.FixedTrial(trial.params))
