"""The robot tasks: an image-based reaching task on Gymnasium's MuJoCo ``Reacher-v5`` and its scripted expert,
PushT (``adaptstep.policies.pusht``, with its expert in ``adaptstep.policies.pusht_expert``) and three MetaWorld
tasks (``adaptstep.policies.metaworld``).

The policy sees a top-down camera image and the arm's own joint state, never the target's coordinates: the target
must be found in the image. **Episode success = ``info["success"]`` at the final step**, i.e. the fingertip ends
within ``success_distance`` of the target after ``episode_steps`` steps (the episode ends by truncation).

``success_distance`` = 0.02 m (the drawn target disc has radius 0.025 m). Measured on Reacher-v5's target
distribution (uniform in a 0.2 m disc): the scripted expert succeeds in 500 / 500 episodes (seeds 0-499, all within
0.02 m by step 20), while policies that ignore the target rarely do, over seeds 10000-10999: moving the fingertip
to a fixed point 0.8 % ((0.1, 0) m) and 0.6 % ((0, 0) m), zero torque 0.2 %, uniform random torques 0.9 %.

``reacher-moving`` is the same arm with a scene that changes mid-episode: at a step drawn uniformly from
``target_jump`` the target jumps to a new point of Reacher's target distribution at least ``jump_distance`` from
the old one (``info["target_jumps"]`` counts the jumps so far), so a policy must look again to succeed. The scripted
expert (which sees the state) succeeds in 1000 / 1000 episodes (seeds 0-999); the same expert steering to where the
target was at reset, in 0 / 200 (seeds 10000-10199). For demonstrations with more reactions to learn from, the reset
option ``jump_again=(lo, hi)`` makes the target jump again after a gap drawn from lo-hi steps, as long as lo steps
remain.

``reacher-drifting`` changes the scene all the time instead: the target circles the arm's base at its distance from
it, turning by ω rad per step, ω drawn per episode uniformly from [−``target_drift``, ``target_drift``]
(``info["target_drift"]``). With ``target_drift`` = 0.02 the scripted expert succeeds in 973 / 1000 episodes (seeds
0-999); steering to where the target was at reset, in 39 / 200 (seeds 10000-10199).

``reacher-appearing`` times a single change instead: the target is invisible until a step drawn uniformly from
``target_jump`` (4-40 of 60), and then appears where it is (``info["target_jumps"]`` turns 1). The scripted expert
holds still (zero torque) while it sees no target and reaches from its resting pose once the target shows, as at an
episode's start; a policy that looks only every k calls reacts up to k - 1 calls late. The expert succeeds in
200 / 200 episodes (seeds 0-199).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco's GL context is created

from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402
from gymnasium.utils import RecordConstructorArgs  # noqa: E402

from adaptstep.policies.metaworld import ACTION_DIM, STATE_DIM, MetaWorldExpert, MetaWorldTask  # noqa: E402
from adaptstep.policies.pusht import make_pusht_env  # noqa: E402
from adaptstep.policies.pusht_expert import PushTExpert  # noqa: E402


PUSHT_ENV_ID = "gym_pusht/PushT-v0"
ARM_POSES = ("rest", "random")  # ImageReacher.reset(options={"arm_pose": ...})
ELBOW_BRANCHES = ("nearest", "positive")  # ReacherExpert(elbow=...)
RANDOM_ELBOW = 2.8  # rad; Reacher's elbow joint is limited to ±3


@dataclass(frozen=True)
class RobotTaskSpec:
    """What a robot task is: its Gymnasium env, episode length, observation/action sizes and success criterion.

    Args:
        name: The task's name, a key of ``ROBOT_TASKS``.
        env_id: The Gymnasium env it wraps.
        episode_steps: The steps of an episode.
        image_size: The default camera image's side, in pixels.
        proprio_dim: The proprioception's dimension.
        action_dim: The action's dimension.
        success_distance: The fingertip-target distance of success at the last step, in metres.
        description: One line for listings.
        target_jump: The target jumps once, at a step drawn uniformly from this range; None for no jump.
        jump_distance: The least distance between the old and the new target, in metres.
        target_drift: The target circles the arm's base at up to this many rad per step; None for no drift.
        target_appears: The target is invisible until its jump, and then appears where it is.
    """

    name: str
    env_id: str
    episode_steps: int
    image_size: int
    proprio_dim: int
    action_dim: int
    success_distance: float
    description: str
    target_jump: tuple[int, int] | None = None
    jump_distance: float = 0.1
    target_drift: float | None = None
    target_appears: bool = False


REACHER = RobotTaskSpec(
    name="reacher",
    env_id="Reacher-v5",
    episode_steps=50,
    image_size=64,
    proprio_dim=6,
    action_dim=2,
    success_distance=0.02,
    description="Reach a red target seen in a top-down 64x64 image with a 2-link arm (torques in [-1, 1]); "
    "success: fingertip within 0.02 m of the target at the last of 50 steps.",
)
ROBOT_TASKS: dict[str, RobotTaskSpec] = {
    "reacher": REACHER,
    "reacher-moving": replace(
        REACHER, name="reacher-moving", episode_steps=80, target_jump=(10, 50),
        description="reacher whose target jumps once, at a step drawn from 10-50, to a new point at least 0.1 m "
        "away; success: fingertip within 0.02 m of the new target at the last of 80 steps."),
    "reacher-drifting": replace(
        REACHER, name="reacher-drifting", target_drift=0.02,
        description="reacher whose target circles the arm's base at an angular speed drawn per episode uniformly "
        "from [-0.02, 0.02] rad per step; success: fingertip within 0.02 m of the target at the last of 50 steps."),
    "reacher-appearing": replace(
        REACHER, name="reacher-appearing", episode_steps=60, target_jump=(4, 40), target_appears=True,
        description="reacher whose target is invisible until a step drawn from 4-40 and then appears where it is; "
        "success: fingertip within 0.02 m of the target at the last of 60 steps."),
    "pusht": RobotTaskSpec(
        name="pusht", env_id=PUSHT_ENV_ID, episode_steps=300, image_size=96, proprio_dim=18, action_dim=2,
        success_distance=0.05,
        description="gym-pusht's PushT (Diffusion Policy's benchmark): push a T onto its goal pose with a disc agent "
        "(absolute targets in [0, 512]^2); proprio = agent position + the T's 8 keypoints; distance = 1 - goal "
        "coverage; success: coverage > 0.95, which ends the episode (else 300 steps)."),
}
ROBOT_TASKS["pusht-image"] = replace(
    ROBOT_TASKS["pusht"], name="pusht-image", proprio_dim=2,
    description="PushT as Diffusion Policy's image-based variant sees it: proprio = the agent's position alone, "
    "the T seen only in the image; otherwise as pusht.")
METAWORLD_TASKS = {"metaworld-push": "push-v3", "metaworld-pick-place": "pick-place-v3",
                   "metaworld-assembly": "assembly-v3"}
for _name, _env_id in METAWORLD_TASKS.items():
    ROBOT_TASKS[_name] = RobotTaskSpec(
        name=_name, env_id=_env_id, episode_steps=200, image_size=64, proprio_dim=STATE_DIM, action_dim=ACTION_DIM,
        success_distance=0.05,  # push-v3's; MetaWorld marks success itself, by each task's own rule
        description=f"MetaWorld's {_env_id} (Sawyer arm; end-effector displacement and gripper effort in [-1, 1]^4); "
        f"proprio = MetaWorld's 39-number state; success as MetaWorld marks it, which ends the episode (else 200 "
        f"steps); distance = the object's distance to the goal.")
REACHER_TARGET_RADIUS = 0.2  # Reacher-v5 draws its target uniformly in this disc (rejection from the square)

IMAGE_SIZES = (32, 256)
TARGET_RGBA = np.array([1.0, 0.0, 0.0, 1.0])
TARGET_DISC = (0.025, 0.001)  # radius, half-height (m) of the flat cylinder drawn instead of Reacher's 0.009 m ball
TARGET_DISC_DEPTH = 0.008  # the disc's centre lies this far below the target body (z = 0.01), so the arm covers it
HEADLIGHT = {"ambient": 0.4, "diffuse": 0.5, "specular": 0.0}  # MuJoCo's 0.1 / 0.4 / 0.5 give a dark, greyed red
TOP_DOWN_CAMERA: dict[str, Any] = {
    "type": mujoco.mjtCamera.mjCAMERA_FREE,
    "trackbodyid": -1,
    "lookat": np.zeros(3),
    "distance": 0.58,  # with the 45 degree field of view this shows about +-0.24 m, the arm's reach is 0.21 m
    "elevation": -90.0,
    "azimuth": 90.0,  # world +x to the image's right, +y up
}


def make_robot_env(task: str = "reacher", image_size: int = 64, seed: int | None = None) -> gym.Env:
    """The task's env, with ``info["distance"]`` / ``info["success"]`` at every reset and step.

    Its observations are ``{"image": uint8 (S, S, 3), "proprio": float32 (P,)}``.

    Args:
        task: The robot task, a key of ``ROBOT_TASKS``.
        image_size: S, the camera image's side in pixels.
        seed: Seeds the first reset.
    """
    spec = robot_task(task)
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or not (
            IMAGE_SIZES[0] <= image_size <= IMAGE_SIZES[1]):
        raise ValueError(f"image_size must be an int in [{IMAGE_SIZES[0]}, {IMAGE_SIZES[1]}], got {image_size!r}")
    if spec.env_id == PUSHT_ENV_ID:
        return make_pusht_env(spec, int(image_size), seed)
    if spec.name in METAWORLD_TASKS:
        return MetaWorldTask(spec, int(image_size), seed)
    env = gym.make(spec.env_id, render_mode="rgb_array", width=int(image_size), height=int(image_size),
                   default_camera_config=TOP_DOWN_CAMERA, max_episode_steps=spec.episode_steps)
    return ImageReacher(env, spec, seed)


def robot_task(task: str) -> RobotTaskSpec:
    """The spec of ``task``.

    Raises:
        ValueError: If ``task`` is unknown, listing the known tasks.
    """
    if task not in ROBOT_TASKS:
        raise ValueError(f"task must be one of {sorted(ROBOT_TASKS)}, got {task!r}")
    return ROBOT_TASKS[task]


class ImageReacher(gym.Wrapper, RecordConstructorArgs):
    """Reacher-v5 seen from above.

    proprio = [cos q0, cos q1, sin q0, sin q1, dq0, dq1] (Reacher's observation without the target position and the
    fingertip-target vector). The target is drawn larger and pure red; this changes only its visual geom
    (contype = conaffinity = 0), not the physics. With ``spec.target_jump`` the target jumps once per episode, or
    repeatedly with the reset option ``jump_again`` (the steps and the new points drawn from the env's seeded
    generator); with ``spec.target_appears`` its first jump only makes it visible (``target_visible``); with
    ``spec.target_drift`` it circles the arm's base all episode.

    Args:
        env (gymnasium.Env): Reacher-v5, made with ``render_mode="rgb_array"``.
        spec: The task.
        seed: Seeds the first reset.
    """

    def __init__(self, env: gym.Env, spec: RobotTaskSpec, seed: int | None = None):
        RecordConstructorArgs.__init__(self, spec=spec, seed=seed)
        gym.Wrapper.__init__(self, env)
        self.metadata = {**env.metadata, "render_modes": ["rgb_array"]}  # the image needs offscreen rendering
        self.task = spec
        self._seed = seed
        self._closed = False
        self._steps, self._jumps = 0, 0  # steps and target jumps this episode
        self._jump_step, self._next_jump = None, None  # the step of the first jump, and of the next
        self._jump_again: tuple[int, int] | None = None  # the gaps between repeated jumps, if any
        self._drift = 0.0  # the target's angular speed about the arm's base this episode (rad per step)
        model = env.unwrapped.model
        target = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "target")
        model.geom_type[target] = mujoco.mjtGeom.mjGEOM_CYLINDER
        model.geom_size[target, :2] = TARGET_DISC
        model.geom_pos[target, 2] = -TARGET_DISC_DEPTH
        model.geom_sameframe[target] = mujoco.mjtSameFrame.mjSAMEFRAME_NONE  # else kinematics ignores geom_pos
        model.geom_rgba[target] = TARGET_RGBA
        self._target_geom, self.target_visible = target, True
        for key, value in HEADLIGHT.items():
            getattr(model.vis.headlight, key)[:] = value
        size = env.unwrapped.width
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (spec.proprio_dim,), np.float32),
        })
        if seed is not None:
            self.action_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Reacher's reset, with options for the arm's pose and repeated jumps.

        ``options={"arm_pose": "random"}`` puts the arm at rest in a random pose (``ARM_POSES``; the default
        ``"rest"`` keeps Reacher's pose near straight), and on a task whose target jumps
        ``options={"jump_again": (lo, hi)}`` makes it jump again lo-hi steps after each jump (drawn uniformly) while
        lo steps of the episode remain after the next jump.
        """
        options = dict(options or {})
        arm_pose = options.pop("arm_pose", "rest")
        if arm_pose not in ARM_POSES:
            raise ValueError(f"options['arm_pose'] must be one of {ARM_POSES}, got {arm_pose!r}")
        self._jump_again = self._check_jump_again(options.pop("jump_again", None))
        if seed is None:
            seed, self._seed = self._seed, None
        state, info = self.env.reset(seed=seed, options=options or None)
        self._steps, self._jumps, self._jump_step = 0, 0, None
        if self.task.target_jump is not None:
            self._jump_step = int(self.env.unwrapped.np_random.integers(self.task.target_jump[0],
                                                                        self.task.target_jump[1] + 1))
        self._next_jump = self._jump_step
        self._drift = 0.0
        if self.task.target_drift is not None:
            self._drift = float(self.env.unwrapped.np_random.uniform(-self.task.target_drift, self.task.target_drift))
        self._show_target(not self.task.target_appears)
        if arm_pose == "random":
            state = self._random_arm_pose()
        return self._observe(state), self._score(info)

    def _check_jump_again(self, gaps) -> tuple[int, int] | None:
        if gaps is None:
            return None
        if self.task.target_jump is None:
            raise ValueError(f"options['jump_again'] needs a task whose target jumps; {self.task.name!r} has none")
        if not (isinstance(gaps, (tuple, list)) and len(gaps) == 2
                and all(isinstance(gap, (int, np.integer)) and not isinstance(gap, bool) for gap in gaps)
                and 1 <= gaps[0] <= gaps[1]):
            raise ValueError(f"options['jump_again'] must be a pair of ints (lo, hi) with 1 <= lo <= hi, got {gaps!r}")
        return int(gaps[0]), int(gaps[1])

    def _random_arm_pose(self) -> np.ndarray:
        """Shoulder angle uniform in [−π, π), elbow uniform within ``RANDOM_ELBOW`` of straight, both at rest;
        returns Reacher's state vector there."""
        env = self.env.unwrapped
        env.data.qpos[:2] = env.np_random.uniform([-np.pi, -RANDOM_ELBOW], [np.pi, RANDOM_ELBOW])
        env.data.qvel[:2] = 0.0
        mujoco.mj_forward(env.model, env.data)
        return env._get_obs()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Reacher's step, then the target's jump or drift; truncated after ``episode_steps`` steps."""
        state, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        if self._steps == self._next_jump:
            if self.target_visible:
                self._move_target()
            else:
                self._show_target(True)
            self._jumps += 1
            self._next_jump = None
            if self._jump_again is not None:
                low, high = self._jump_again
                step = self._steps + int(self.env.unwrapped.np_random.integers(low, high + 1))
                if step <= self.task.episode_steps - low:
                    self._next_jump = step
        if self._drift:
            self._rotate_target(self._drift)
        return self._observe(state), reward, terminated, truncated, self._score(info)

    def turn_target(self, angle: float) -> dict[str, np.ndarray]:
        """Turn the target by ``angle`` rad about the arm's base, at its distance from it; returns the observation.

        The arm is untouched. This is what ``reacher-drifting`` does at every step, and a probe of what a policy
        reads from the image (``adaptstep.policies.diagnostics.target_sensitivity``).
        """
        self._rotate_target(angle)
        return self._observe(self.env.unwrapped._get_obs())

    def _rotate_target(self, angle: float) -> None:
        """Turn the target by ``angle`` rad about the arm's base (the origin), at its distance from it."""
        env = self.env.unwrapped
        cos, sin = np.cos(angle), np.sin(angle)
        x, y = env.data.qpos[2:4]
        env.data.qpos[2:4], env.data.qvel[2:4] = (cos * x - sin * y, sin * x + cos * y), 0.0
        mujoco.mj_forward(env.model, env.data)

    def _show_target(self, visible: bool) -> None:
        """Draw the target disc (alpha 1) or hide it (alpha 0, which MuJoCo does not render); physics unchanged."""
        self.env.unwrapped.model.geom_rgba[self._target_geom, 3] = float(visible)
        self.target_visible = visible

    def _move_target(self) -> None:
        """Put the target at a new point of Reacher's distribution, ``jump_distance`` or more from the old one."""
        env = self.env.unwrapped
        old = env.data.qpos[2:4].copy()
        while True:
            goal = env.np_random.uniform(-REACHER_TARGET_RADIUS, REACHER_TARGET_RADIUS, size=2)
            if np.linalg.norm(goal) < REACHER_TARGET_RADIUS and np.linalg.norm(goal - old) >= self.task.jump_distance:
                break
        env.data.qpos[2:4], env.data.qvel[2:4] = goal, 0.0
        mujoco.mj_forward(env.model, env.data)

    def close(self) -> None:
        """Free the MuJoCo render context while this env's GL context is current, then close the env.

        Gymnasium leaves it to garbage collection, which deletes its GL objects in whichever context is current
        then: another env's, whose images turn black.
        """
        viewer = self.env.unwrapped.mujoco_renderer.viewer
        if viewer is not None and not self._closed:
            viewer.make_context_current()
            viewer.con.free()
        self._closed = True
        super().close()

    def _observe(self, state: np.ndarray) -> dict[str, np.ndarray]:
        proprio = np.concatenate([state[:4], state[6:8]]).astype(np.float32)
        return {"image": self._render(), "proprio": proprio}

    def _render(self) -> np.ndarray:
        """The camera image; binds this env's GL context first, since Gymnasium binds it only when it is made and
        closing any other env unbinds the current one."""
        viewer = self.env.unwrapped.mujoco_renderer.viewer
        if viewer is not None:
            viewer.make_context_current()
        return np.ascontiguousarray(self.env.render())

    def _score(self, info: dict) -> dict:
        info["distance"] = fingertip_distance(self.env)
        info["success"] = bool(info["distance"] < self.task.success_distance)
        if self.task.target_jump is not None:
            info["target_jumps"] = self._jumps
        if self.task.target_drift is not None:
            info["target_drift"] = self._drift
        return info


def target_colour_weight(images: np.ndarray) -> np.ndarray:
    """How strongly each pixel of uint8 RGB ``images`` (..., H, W, 3) shows the target's pure red (``TARGET_RGBA``).

    The weight is (R − max(G, B))⁺ / 255 in [0, 1]. The arm, the floor and the grid score near 0, so a change of
    this weight between frames shows the target moving, and the arm only where it passes over the target.
    """
    images = np.asarray(images, dtype=np.float32)  # no copy of frames already float32
    return np.clip(images[..., 0] - np.maximum(images[..., 1], images[..., 2]), 0, None) / 255


def fingertip_distance(env: gym.Env) -> float:
    """Fingertip-target distance in metres (in the plane of the arm)."""
    data = env.unwrapped.data
    return float(np.linalg.norm(data.body("fingertip").xpos[:2] - data.body("target").xpos[:2]))


class ReacherExpert:
    """Scripted expert with privileged state: analytic 2-link inverse kinematics to the target, then a PD law.

    IK (link lengths l1, l2 from the model's body positions, target p relative to the shoulder):
    cos q1 = (|p|^2 - l1^2 - l2^2) / (2 l1 l2), q0 = atan2(p_y, p_x) - atan2(l2 sin q1, l1 + l2 cos q1), taking of the
    two elbow branches (+-q1) the one closer to the current joint angles. Torque u = clip(kp (q* - q) - kd dq, -1, 1),
    with q0's error wrapped to (-pi, pi] since joint 0 is unlimited. ``elbow="positive"`` always takes q1 >= 0
    instead: the goal then changes with the target without jumping between branches, so the reaction to a new target
    is easier to imitate (but for the shoulder's wrap). ``target`` (x, y) in world coordinates, if given, is steered
    to instead of the target body (an expert that has not yet seen a jump). While the env's target is hidden
    (``ImageReacher.target_visible`` False, ``reacher-appearing`` before it appears) the expert holds still: zero
    torque.

    Args:
        kp (float): The PD law's proportional gain.
        kd (float): The PD law's derivative gain.
        elbow (str): ``"nearest"`` (the branch closer to the current angles) or ``"positive"`` (q1 >= 0).

    Raises:
        ValueError: If ``elbow`` is neither.
    """

    def __init__(self, kp: float = 1.0, kd: float = 0.12, elbow: str = "nearest"):
        if elbow not in ELBOW_BRANCHES:
            raise ValueError(f"elbow must be one of {ELBOW_BRANCHES}, got {elbow!r}")
        self.kp = kp
        self.kd = kd
        self.elbow = elbow

    def __call__(self, env: gym.Env, target: np.ndarray | None = None) -> np.ndarray:
        if not _target_visible(env):
            return np.zeros(2, dtype=np.float32)
        model, data = env.unwrapped.model, env.unwrapped.data
        l1 = float(np.linalg.norm(model.body("body1").pos))
        l2 = float(np.linalg.norm(model.body("fingertip").pos))
        limit = float(model.joint("joint1").range[1])
        q, dq = data.qpos[:2], data.qvel[:2]
        p = (data.body("target").xpos[:2] if target is None else np.asarray(target)) - data.body("body0").xpos[:2]
        elbow = np.arccos(np.clip((p @ p - l1**2 - l2**2) / (2 * l1 * l2), -1.0, 1.0))
        goals = []
        for q1 in (elbow, -elbow) if self.elbow == "nearest" else (elbow,):
            q1 = float(np.clip(q1, -limit, limit))
            q0 = np.arctan2(p[1], p[0]) - np.arctan2(l2 * np.sin(q1), l1 + l2 * np.cos(q1))
            goals.append(np.array([q[0] + _wrap(q0 - q[0]), q1]))
        goal = min(goals, key=lambda g: float(np.abs(g - q).sum()))
        return np.clip(self.kp * (goal - q) - self.kd * dq, -1.0, 1.0).astype(np.float32)


def make_expert(task: str, elbow: str = "nearest") -> ReacherExpert | PushTExpert | MetaWorldExpert:
    """The task's scripted expert (``elbow`` only for the reacher tasks' ``ReacherExpert``)."""
    spec = robot_task(task)
    if spec.env_id == PUSHT_ENV_ID:
        return PushTExpert()
    if spec.name in METAWORLD_TASKS:
        return MetaWorldExpert(spec.env_id)
    return ReacherExpert(elbow=elbow)


def is_reacher(task: str) -> bool:
    """Whether ``task`` is one of the reacher tasks (``ImageReacher``), whose resets take the reacher options."""
    return robot_task(task).env_id == REACHER.env_id


def expert_target(env: gym.Env) -> np.ndarray | None:
    """Where the reacher expert steers now (the target body's position); None for the other tasks, whose experts
    read the whole scene."""
    if not is_reacher(env.get_wrapper_attr("task").name):
        return None
    return env.unwrapped.data.body("target").xpos[:2].copy()


def _target_visible(env: gym.Env) -> bool:
    """Whether ``env`` (an ``ImageReacher``, possibly wrapped) draws its target; True for envs that always do."""
    try:
        return bool(env.get_wrapper_attr("target_visible"))
    except AttributeError:
        return True


def _wrap(angle: float) -> float:
    """``angle`` wrapped to (-pi, pi]."""
    return float(np.pi - (np.pi - angle) % (2 * np.pi))
