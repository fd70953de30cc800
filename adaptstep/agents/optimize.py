"""Hyperparameter search with Optuna, as rl-baselines3-zoo's ``--optimize``: TPE sampler, median pruner.

Each trial samples the algorithm's usual search space (rl-zoo's ``hyperparams_opt.py``: PPO, SAC, DQN) on top of
the env's entry in ``agents/<algo>.yml`` (its env kwargs, ``n_envs`` and normalisation stay), trains with
``adaptstep.agents.training.train`` and reports the held-out evaluations' median of the env's first metric to the
trial (``HeldOutEvaluation``), so the median pruner can stop it; the objective is that metric's median over
``eval_episodes`` held-out episodes of the final model, through the harness (``evaluate``), in the metric's
direction. Trials of one study may run in several processes or on several machines that share ``storage`` (an
Optuna storage URL such as ``sqlite:///study.db`` or ``postgresql://...``). The best trial's hyperparameters are
written as an ``agents/*.yml`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from adaptstep.agents.eval_callback import EVAL_SEED
from adaptstep.agents.training import check_hyperparameters, config_file, hyperparameters, train
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


def optimize(env_id: str, algo: str, trials: int, timesteps: int, out_dir: str | Path, yaml_out: str | Path,
             config: str | Path | None = None, storage: str | None = None, study_name: str | None = None,
             eval_freq: int | None = None, eval_episodes: int = 5, seed: int = 0, startup_trials: int = 5,
             warmup_evaluations: int = 1) -> Any:
    """Run ``trials`` trials of a study and write the best hyperparameters as a YAML entry.

    Args:
        env_id: A registered env id.
        algo: ``ppo``, ``sac`` or ``dqn``.
        trials: Trials this process runs (>= 1); processes sharing ``storage`` add theirs to one study.
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

    Returns:
        The Optuna study.

    Raises:
        ValueError: For a bad algorithm, trial count or step count, or when no trial completes.
    """
    import optuna  # an optional dependency (the scale extra)

    if algo not in SAMPLERS:
        raise ValueError(f"algo must be one of {list(SAMPLERS)}, got {algo!r}")
    for name, value in (("trials", trials), ("timesteps", timesteps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    metric = env_class(env_id).metrics[0]
    base = hyperparameters(algo, env_id, config)
    every = eval_freq or max(timesteps // 4, 1)
    out_dir = Path(out_dir)

    def objective(trial: optuna.Trial) -> float:
        params = trial_params(base, SAMPLERS[algo](trial))
        params["n_timesteps"] = timesteps
        check_hyperparameters(params, algo, f"trial {trial.number}")
        run = out_dir / f"trial_{trial.number}"
        trial_config = run / "config.yml"
        atomic_write_text(trial_config, yaml.safe_dump({env_id: params}, sort_keys=False))

        def report(row: Mapping[str, float]) -> None:
            trial.report(trial_value(row, metric.name), int(row["timesteps"]))
            if trial.should_prune():
                raise optuna.TrialPruned()

        train(env_id, algo, run, config=trial_config, timesteps=timesteps, seed=seed,
              progress_bar=False, overwrite=True, eval_freq=every, eval_episodes=eval_episodes,
              on_evaluation=report)
        table = evaluate(env_id, [str(run / "model.zip")], episodes=eval_episodes, seed=EVAL_SEED, progress=False)
        return float(table[metric.name].median())

    study = optuna.create_study(
        storage=storage, study_name=study_name or f"{env_id.split('/')[-1]}-{algo}", load_if_exists=True,
        direction="maximize" if metric.higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(n_startup_trials=startup_trials, seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_evaluations * every))
    study.optimize(objective, n_trials=trials, catch=())
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ValueError(f"no trial of study {study.study_name!r} completed (all pruned or failed)")
    best = trial_params(base, _replay(algo, study.best_trial))
    best["n_timesteps"] = base.get("n_timesteps", timesteps)
    header = (f"# adaptstep optimize {env_id} --algo {algo}: best of {len(study.trials)} trials, trial "
              f"{study.best_trial.number}, {metric.name} median {study.best_value:.6g} on {eval_episodes} held-out "
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
