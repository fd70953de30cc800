"""D4RL-style Hopper datasets made by adaptstep: train a SAC behaviour policy, pick a checkpoint, roll it out.

D4RL's Gym-MuJoCo data (Fu et al. 2020, ``scripts/generation/mujoco/collect_data.py``): "medium" is a policy
trained to about a third of expert return, "expert" a fully trained one; each dataset is rollouts of the
*stochastic* policy with a 1000-step time limit, storing ``terminals`` (true termination), ``timeouts`` (time
limit), ``next_observations``, ``infos/qpos``, ``infos/qvel`` and ``infos/action_log_probs``.

Here the policy is stable-baselines3 SAC (Haarnoja et al. 2018) with rl-zoo's Hopper hyperparameters (SB3
defaults, ``learning_starts`` 10 000) on Gymnasium's Hopper-v5. Checkpoints are saved at every evaluation point
with their mean return over stochastic-policy episodes (what the dataset will contain) in ``log.json`` beside them.
Hopper-v5 dynamics differ from D4RL's Hopper-v3 (mujoco-py), so scores are not comparable to published ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from adaptstep.io import atomic_path, atomic_write_text
from adaptstep.planning.datasets import OfflineDataset

ENV_ID, EPISODE_STEPS, EXPERT_RETURN = "Hopper-v5", 1000, 3234.3
LOCOMOTION_LEVELS = {"hopper-medium": EXPERT_RETURN / 3, "hopper-expert": EXPERT_RETURN}  # name -> target mean return
LOG_NAME = "log.json"


def _versions() -> dict[str, str]:
    return {package: metadata.version(package) for package in ("gymnasium", "mujoco", "stable-baselines3", "torch")}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate_returns(model, env_id: str, episodes: int, seed: int, deterministic: bool = False) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of ``model`` (time limit ``EPISODE_STEPS``) from ``seed``."""
    import gymnasium as gym

    env = gym.make(env_id, max_episode_steps=EPISODE_STEPS)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(observation, deterministic=deterministic)
            observation, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return np.asarray(returns)


def train_behaviour_policy(env_id: str = ENV_ID, steps: int = 300_000, seed: int = 0,
                           out_dir: str | Path = "runs/hopper-sac", eval_every: int = 10_000, eval_episodes: int = 5,
                           learning_starts: int = 10_000, stop_return: float | None = None,
                           progress: bool = False) -> Path:
    """Train SAC on ``env_id``, saving a checkpoint and its mean return at every evaluation point.

    Every ``eval_every`` steps it saves ``sac_<step>.zip`` and appends {step, path, mean_return, std_return,
    wall_s} to ``log.json`` in ``out_dir`` (atomic writes).

    Args:
        env_id: The Gymnasium env id.
        steps: The environment steps.
        seed: The seed of SAC and the evaluations.
        out_dir: The folder of the checkpoints and ``log.json``.
        eval_every: The steps between evaluation points.
        eval_episodes: The stochastic-policy episodes that ``mean_return`` averages.
        learning_starts: SAC's random steps before learning.
        stop_return: Stop early once ``mean_return`` reaches it; None to run all ``steps``.
        progress: Show a progress bar.

    Returns:
        The path of ``log.json``.
    """
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    for name, value, low in (("steps", steps, 1), ("eval_every", eval_every, 1), ("eval_episodes", eval_episodes, 1),
                             ("learning_starts", learning_starts, 0)):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if eval_every > steps:
        raise ValueError(f"eval_every ({eval_every}) must not exceed steps ({steps}): no checkpoint would be saved")
    out_dir = Path(out_dir)
    log_path, entries, start = out_dir / LOG_NAME, [], time.perf_counter()

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            path = out_dir / f"sac_{self.num_timesteps:07d}.zip"
            with atomic_path(path) as temporary:
                self.model.save(temporary)
            returns = evaluate_returns(self.model, env_id, eval_episodes, seed=10_000 + seed)
            entries.append({"step": self.num_timesteps, "path": str(path.resolve()),
                            "mean_return": float(returns.mean()), "std_return": float(returns.std()),
                            "wall_s": round(time.perf_counter() - start, 1)})
            atomic_write_text(log_path, json.dumps({
                "env_id": env_id, "algorithm": "SAC", "seed": seed, "learning_starts": learning_starts,
                "eval_episodes": eval_episodes, "versions": _versions(), "checkpoints": entries}, indent=1))
            if progress:
                print(f"step {self.num_timesteps}: mean return {returns.mean():.1f} ± {returns.std():.1f} "
                      f"({entries[-1]['wall_s']} s)", flush=True)
            return stop_return is None or returns.mean() < stop_return

    env = gym.make(env_id, max_episode_steps=EPISODE_STEPS)
    env.reset(seed=seed)
    model = SAC("MlpPolicy", env, learning_starts=learning_starts, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=steps, callback=Checkpoints())
    env.close()
    return log_path


def _read_log(log: str | Path | dict) -> dict:
    return log if isinstance(log, dict) else json.loads(Path(log).read_text())


def pick_checkpoint(log: str | Path | dict, target_return: float) -> Path:
    """The checkpoint in ``log`` (a ``log.json`` path or its contents) whose mean return is closest to the target."""
    checkpoints = _read_log(log)["checkpoints"]
    if not checkpoints:
        raise ValueError("the log holds no checkpoints")
    return Path(min(checkpoints, key=lambda entry: abs(entry["mean_return"] - target_return))["path"])


def make_locomotion_dataset(name: str = "hopper-medium", policy_path: str | Path = "", transitions: int = 1_000_000,
                            seed: int = 0, progress: bool = False) -> OfflineDataset:
    """``transitions`` steps of a SAC policy in Hopper-v5, actions sampled from the policy (as D4RL did).

    Episodes are cut by termination (``terminals``) or the 1000-step limit (``timeouts``).

    Args:
        name: The dataset's name (``hopper-medium`` or ``hopper-expert``), recorded in its metadata.
        policy_path: The SAC checkpoint.
        transitions: The steps collected.
        seed: The seed of the rollouts.
        progress: Show a progress bar.

    Raises:
        ValueError: If ``name`` is not a key of ``LOCOMOTION_LEVELS`` or ``transitions`` is not an int >= 1.
        FileNotFoundError: If ``policy_path`` is not a file.
    """
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from tqdm.auto import tqdm

    if name not in LOCOMOTION_LEVELS:
        raise ValueError(f"name must be one of {sorted(LOCOMOTION_LEVELS)}, got {name!r}")
    if not (isinstance(transitions, int) and not isinstance(transitions, bool) and transitions >= 1):
        raise ValueError(f"transitions must be an int >= 1, got {transitions!r}")
    policy_path = Path(policy_path)
    if not policy_path.is_file():
        raise FileNotFoundError(f"policy_path {policy_path} is not a file (an SB3 SAC .zip checkpoint)")
    torch.manual_seed(seed)
    model = SAC.load(policy_path, device="cpu")
    env = gym.make(ENV_ID, max_episode_steps=EPISODE_STEPS)
    data = env.unwrapped.data
    columns = {key: [] for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations",
                                   "qpos", "qvel", "action_log_probs")}
    observation, _ = env.reset(seed=seed)
    for _ in tqdm(range(transitions), desc=name, disable=not progress, mininterval=1.0):
        with torch.no_grad():
            squashed, log_prob = model.actor.action_log_prob(torch.as_tensor(observation[None], dtype=torch.float32))
        action = model.policy.unscale_action(squashed.numpy()[0]).astype(np.float32)
        qpos, qvel = data.qpos.copy(), data.qvel.copy()
        following, reward, terminated, truncated, _ = env.step(action)
        for key, value in (("observations", observation), ("actions", action), ("rewards", reward),
                           ("terminals", terminated), ("timeouts", truncated and not terminated),
                           ("next_observations", following), ("qpos", qpos), ("qvel", qvel),
                           ("action_log_probs", float(log_prob))):
            columns[key].append(value)
        observation = env.reset()[0] if terminated or truncated else following
    env.close()
    arrays = {key: np.asarray(value) for key, value in columns.items()}
    arrays["timeouts"][-1] |= not arrays["terminals"][-1]  # the last episode ends where the data does
    log_path = policy_path.parent / LOG_NAME
    logged = _read_log(log_path)["checkpoints"] if log_path.is_file() else []
    entry = next((entry for entry in logged if Path(entry["path"]) == policy_path.resolve()), {})
    return OfflineDataset(
        observations=arrays["observations"].astype(np.float32), actions=arrays["actions"],
        rewards=arrays["rewards"].astype(np.float32), terminals=arrays["terminals"], timeouts=arrays["timeouts"],
        next_observations=arrays["next_observations"].astype(np.float32),
        infos={key: arrays[key].astype(np.float32) for key in ("qpos", "qvel", "action_log_probs")},
        metadata={"task": name, "env_id": ENV_ID, "episode_steps": EPISODE_STEPS, "transitions": transitions,
                  "seed": seed, "actions": "sampled from the SAC policy", "policy_path": str(policy_path.resolve()),
                  "policy_sha256": _sha256(policy_path), "policy_eval_return": entry.get("mean_return"),
                  "policy_training_steps": int(model.num_timesteps), "versions": _versions()},
    )
