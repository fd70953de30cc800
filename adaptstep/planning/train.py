"""``adaptstep train-planner``: train a planner on a D4RL-format dataset and save it as one checkpoint."""

from __future__ import annotations

from pathlib import Path

from adaptstep.core.settings import require_int
from adaptstep.planning.d4rl_maze import one_trajectory
from adaptstep.planning.datasets import read_d4rl
from adaptstep.planning.diffuser import Diffuser, train_diffuser
from adaptstep.planning.offline_rl import train_bc, train_iql
from adaptstep.planning.planners import PLANNER_KINDS, save_planner
from adaptstep.planning.policies import save_policy
from adaptstep.planning.tasks import planning_task
from adaptstep.planning.trajectory_diffuser import TrajectoryDiffuser, train_trajectory_diffuser
from adaptstep.planning.value_guidance import train_value


def train_planner(kind: str, data: str | Path, task: str, out: str | Path, horizon: int = 32, steps: int = 8000,
                  batch_size: int | None = None, lr: float | None = None, dim: int = 32, seed: int = 0, device: str = "auto",
                  value_steps: int | None = None, tau: float = 0.7, beta: float = 3.0, state_only: bool = False,
                  goal_conditioned: bool = False, save_every: int = 0, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """Train a planner on a dataset file for a task and save it.

    The condition (goal or return) follows the task. The checkpoint's metadata records the dataset and settings.
    ``bc`` and ``iql`` train the reactive baselines of ``offline_rl`` (``horizon`` and ``dim`` do not apply).
    On D4RL-protocol maze tasks the planners train on the data as one trajectory (``one_trajectory``).

    Args:
        kind: One of ``PLANNER_KINDS``.
        data: The D4RL-layout dataset file.
        task: The task, a key of ``PLANNING_TASKS``; its dimensions must match the dataset's.
        out: The checkpoint file.
        horizon: The plan's steps.
        steps: The training steps.
        batch_size: The minibatch size; None for 32 (planners) or 256 (bc, iql, as in the IQL paper).
        lr: The learning rate; None for 4e-4 (planners) or 3e-4 (bc, iql).
        dim: The network's base width.
        seed: The seed of everything random.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        value_steps: A Diffuser for a return task also gets a value function for guided planning, trained this
            many steps; None for ``steps``, 0 for none.
        tau: IQL's expectile.
        beta: IQL's inverse temperature.
        state_only: ``bc`` on a goal task without the goal input (D4RL's behaviour cloning, as IQL's policy).
        goal_conditioned: ``iql`` on a goal task with the data's goal as an input and the reward relabelled to it
            (``offline_rl.train_iql(goal=True)``); IQL is otherwise state-only, as in its paper.
        save_every: ``diffuser``, ``trajectory-diffuser``: also save the EMA model every this many steps before the
            last, as ``<out stem>-step<N><suffix>`` (a training curve's checkpoints; a Diffuser's without a value
            function); 0 for none.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        ``out``.

    Raises:
        ValueError: If ``kind`` or ``task`` is unknown, the dataset does not fit the task, ``state_only`` is
            set for a kind other than ``bc``, ``goal_conditioned`` for a kind other than ``iql`` or a task
            without goals, or ``save_every`` for a kind other than ``trajectory-diffuser``.
        FileExistsError: If ``out`` exists and ``overwrite`` is False.
    """
    if kind not in PLANNER_KINDS:
        raise ValueError(f"planner must be one of {list(PLANNER_KINDS)}, got {kind!r}")
    if state_only and kind != "bc":
        raise ValueError(f"state_only applies to the bc planner only, got planner {kind!r}")
    if goal_conditioned and kind != "iql":
        raise ValueError(f"goal_conditioned applies to the iql planner only, got planner {kind!r}")
    require_int("save_every", save_every, minimum=0)
    if save_every and kind not in ("diffuser", "trajectory-diffuser"):
        raise ValueError(f"save_every applies to the diffuser and trajectory-diffuser planners only, got planner "
                         f"{kind!r}")
    spec, out = planning_task(task), Path(out)
    if goal_conditioned and spec.condition != "goal":
        raise ValueError(f"goal_conditioned needs a task with goals, got task {task!r}")
    snapshots = [snapshot_path(out, step) for step in range(save_every, steps, save_every)] if save_every else []
    for path in (out, *snapshots):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    dataset = read_d4rl(data)
    if dataset.observations.shape[1] != spec.obs_dim or dataset.actions.shape[1] != spec.act_dim:
        raise ValueError(f"{data} has {dataset.observations.shape[1]}-d states and {dataset.actions.shape[1]}-d "
                         f"actions; task {task!r} needs {spec.obs_dim} and {spec.act_dim}")
    policy_kind = kind in ("bc", "iql")
    batch_size = batch_size or (256 if policy_kind else 32)
    lr = lr or (3e-4 if policy_kind else 4e-4)
    if policy_kind:
        goal = spec.condition == "goal" and (goal_conditioned if kind == "iql" else not state_only)
        return _train_policy(kind, dataset, spec, data, task, out, steps, batch_size, lr, seed, device, tau, beta,
                             goal, progress)
    if spec.protocol == "d4rl":
        dataset = one_trajectory(dataset)
    provenance = {"task": task, "dataset": str(data), "dataset_metadata": dataset.metadata}
    settings = dict(horizon=horizon, steps=steps, batch_size=batch_size, lr=lr, dim=dim, seed=seed, device=device,
                    progress=progress)
    def save_snapshot(snapshot: Diffuser | TrajectoryDiffuser) -> None:
        snapshot.metadata.update(provenance)
        path = snapshot_path(out, snapshot.metadata["steps"])
        if isinstance(snapshot, Diffuser):
            save_planner(snapshot, path)
        else:
            snapshot.save(path)

    if kind == "diffuser":
        model = train_diffuser(dataset, goal_dims=2 if spec.condition == "goal" else 0, snapshot=save_snapshot,
                               snapshot_every=save_every, **settings)
    else:
        model = train_trajectory_diffuser(dataset, condition=spec.condition, snapshot=save_snapshot,
                                          snapshot_every=save_every, **settings)
    model.metadata.update(provenance)
    if kind == "diffuser":
        value_steps = steps if value_steps is None else value_steps
        value = None
        if spec.condition == "return" and value_steps > 0:
            value = train_value(model, dataset, steps=value_steps, batch_size=batch_size, lr=lr, seed=seed,
                                device=device, progress=progress)
        return save_planner(model, out, value)
    model.save(out)
    return out


def _train_policy(kind: str, dataset, spec, data, task: str, out: Path, steps: int, batch_size: int, lr: float,
                  seed: int, device: str, tau: float, beta: float, goal: bool, progress: bool) -> Path:
    """Train and save a BC or IQL policy, goal-conditioned if ``goal`` (``train_planner``'s ``bc`` and ``iql``)."""
    if kind == "bc":
        policy, metadata = train_bc(dataset, goal=goal, steps=steps, batch_size=batch_size,
                                    lr=lr, seed=seed, device=device, progress=progress)
    else:
        policy, metadata = train_iql(dataset, steps=steps, batch_size=batch_size, lr=lr, tau=tau, beta=beta,
                                     scale_rewards=spec.condition == "return", goal=goal, seed=seed,
                                     device=device, progress=progress)
    metadata.update({"task": task, "condition": spec.condition, "dataset": str(data),
                     "dataset_metadata": dataset.metadata})
    return save_policy(policy, kind, metadata, out)


def snapshot_path(out: Path, step: int) -> Path:
    """Where ``train_planner(save_every=...)`` saves the model after ``step`` steps: ``<stem>-step<step><suffix>``."""
    return out.with_name(f"{out.stem}-step{step}{out.suffix}")
