"""adaptstep's scripted PushT expert: greedy pushes chosen by simulating them, and paths around the T.

At each decision the expert scores straight pushes on a copy of the scene (gym-pusht's own pymunk physics and PD
control): from a pre-contact point ``clearance`` px outside a point of the T's outline, the agent's target moves
along the edge's inward normal by a push length, then holds. The error of a pose is
e = ‖p − p_goal‖ + ``angle_weight`` · |θ − θ_goal| (px; the T's origin and angle, as gym-pusht's ``block_pose``).
Every push is first scored from its pre-contact point with the agent at rest there; the ``shortlist`` best are then
simulated whole from the scene as it is (the walk to the pre-contact point along the shortest path around the T,
a visibility graph on the corners of the T grown by the agent's radius, then the push, then ``settle`` steps of
holding), and the one with the lowest final e is executed, step by step, before the next decision. Pushes are
long (15-80 px) while e >= ``near`` and fine (2-12 px) below it, since coverage > 0.95 needs the T within about
2 px and 0.02 rad of its goal. The demonstrations are deterministic and unimodal, unlike the human ones of Chi et
al. (2023).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque

import gymnasium as gym
import numpy as np
import pymunk
import shapely.geometry as sg
from gym_pusht.envs.pusht import PushTEnv

# the T's outline in the block's frame (gym-pusht's add_tee with scale 30, length 4), counter-clockwise
T_OUTLINE = np.array([(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)], float)
AGENT_RADIUS = 15.0
WORKSPACE = (20.0, 492.0)  # agent positions the walls (at 5 and 506, 2 px thick) leave free


def _rotation(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def pose_error(pose: np.ndarray, goal: np.ndarray, angle_weight: float) -> float:
    """e = ‖p − p_goal‖ + angle_weight · |θ − θ_goal| (wrapped), for poses (x, y, θ)."""
    return float(np.hypot(*(pose[:2] - goal[:2])) + angle_weight * abs(_wrap(pose[2] - goal[2])))


class PushTExpert:
    """The scripted PushT expert (see the module's description); call it with the PushT env to get its action.

    Args:
        push_lengths: The push lengths it tries, in px past first contact.
        contact_fractions: Where along each edge of the T's outline it tries to push (fractions of the edge).
        clearance: The pre-contact point's distance from the outline (> the agent's radius 15), in px.
        speed: The agent target's largest move per step, in px.
        angle_weight: The error's px per radian of angle error.
        push_steps: The steps a push's target takes to move its length.
        shortlist: How many of the best pushes scored from rest are simulated whole, approach included.
        fine_lengths: The push lengths it tries where e < ``near``.
        near: The error below which it pushes by ``fine_lengths``.
        settle: The steps a whole push is simulated on with the agent holding, so that a push that leaves the T
            sliding scores by where it slides to.
    """

    def __init__(self, push_lengths: tuple[float, ...] = (15.0, 40.0, 80.0),
                 contact_fractions: tuple[float, ...] = (0.25, 0.75), clearance: float = 22.0,
                 speed: float = 25.0, angle_weight: float = 100.0, push_steps: int = 4,
                 shortlist: int = 12, fine_lengths: tuple[float, ...] = (2.0, 5.0, 12.0), near: float = 30.0,
                 settle: int = 6):
        if clearance <= AGENT_RADIUS:
            raise ValueError(f"clearance must be > the agent's radius {AGENT_RADIUS}, got {clearance!r}")
        self.push_lengths, self.contact_fractions = tuple(push_lengths), tuple(contact_fractions)
        self.clearance, self.speed, self.angle_weight, self.push_steps = clearance, speed, angle_weight, push_steps
        self.shortlist, self.fine_lengths, self.near, self.settle = shortlist, tuple(fine_lengths), near, settle
        self._plan: deque[np.ndarray] = deque()

    def reset(self) -> None:
        """Forget the current plan (call at an episode's start)."""
        self._plan.clear()

    def __call__(self, env: gym.Env, target: np.ndarray | None = None) -> np.ndarray:
        """The absolute agent target (x, y) in [0, 512]² for the PushT env's current state (``target`` unused)."""
        scene: PushTEnv = env.unwrapped
        agent = np.array(scene.agent.position)
        if not self._plan:
            self._plan.extend(self._decide(scene))
        if not self._plan:  # no push is reachable: hold still
            return agent.astype(np.float32)
        return self._plan.popleft().astype(np.float32)

    def _decide(self, scene: PushTEnv) -> list[np.ndarray]:
        """The targets of the approach and the push chosen (the best even where none lowers the error).

        Every push is first scored from its pre-contact point with the agent put there at rest; the ``shortlist``
        best are then simulated whole, approach included, from the scene as it is.
        """
        pose = np.array([*scene.block.position, scene.block.angle], float)
        goal = np.asarray(scene.goal_pose, float)
        agent = np.array(scene.agent.position)
        scored = []
        near = pose_error(pose, goal, self.angle_weight) < self.near
        shape = sg.Polygon(T_OUTLINE @ _rotation(pose[2]).T + pose[:2])
        for contact, normal in self._contacts(pose):
            start = contact + normal * self.clearance
            if not (np.all(start >= WORKSPACE[0]) and np.all(start <= WORKSPACE[1])) or shape.distance(
                    sg.Point(start)) < AGENT_RADIUS + 2:  # off the table, or against another part of the T
                continue
            for length in self.fine_lengths if near else self.push_lengths:
                targets = self._push_targets(start, -normal, length)
                end = self._simulate(scene, targets, start)
                scored.append((pose_error(end, goal, self.angle_weight), start, targets))
        scored.sort(key=lambda item: item[0])
        best, best_error = [], np.inf
        for _, start, targets in scored[:self.shortlist]:
            path = self._path(agent, start, pose)
            if path is None:
                continue
            plan = path + [start] + targets
            error = pose_error(self._simulate(scene, plan + plan[-1:] * self.settle), goal, self.angle_weight)
            if error < best_error:
                best, best_error = plan, error
        return best

    def _contacts(self, pose: np.ndarray):
        """(contact point, outward unit normal) pairs on the T's outline at ``pose``, in world coordinates."""
        rotation = _rotation(pose[2])
        corners = T_OUTLINE @ rotation.T + pose[:2]
        for a, b in zip(corners, np.roll(corners, -1, axis=0)):
            edge = b - a
            normal = np.array([edge[1], -edge[0]]) / np.linalg.norm(edge)  # outward for a counter-clockwise outline
            for fraction in self.contact_fractions:
                yield a + fraction * edge, normal

    def _push_targets(self, start: np.ndarray, direction: np.ndarray, length: float) -> list[np.ndarray]:
        """The agent targets that move from ``start`` by clearance − radius + ``length`` along ``direction``."""
        travel = self.clearance - AGENT_RADIUS + length
        steps = max(self.push_steps, int(np.ceil(travel / self.speed)))
        targets = [start + direction * travel * (k + 1) / steps for k in range(steps)]
        return targets + [targets[-1]]  # hold once, so the block settles

    def _simulate(self, scene: PushTEnv, targets: list[np.ndarray], start: np.ndarray | None = None) -> np.ndarray:
        """The T's pose after the agent follows ``targets`` (gym-pusht's PD control) from the scene as it is, or
        put at rest at ``start`` if given."""
        space = pymunk.Space()
        space.gravity, space.damping = (0, 0), scene.space.damping
        space.add(*(PushTEnv.add_segment(space, a, b, 2) for a, b in
                    (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))))
        agent = PushTEnv.add_circle(space, tuple(scene.agent.position if start is None else start), AGENT_RADIUS)
        if start is None:
            agent.velocity = scene.agent.velocity
        block, _ = PushTEnv.add_tee(space, (0, 0), 0)
        if scene.block_cog is not None:
            block.center_of_gravity = scene.block_cog
        block.angle = scene.block.angle  # before the position: setting the angle turns the T about its centre of mass
        block.position = scene.block.position
        block.velocity, block.angular_velocity = scene.block.velocity, scene.block.angular_velocity
        substeps = int(1 / (scene.dt * scene.control_hz))
        for target in targets:
            for _ in range(substeps):
                acceleration = scene.k_p * (pymunk.Vec2d(*target) - agent.position) - scene.k_v * agent.velocity
                agent.velocity += acceleration * scene.dt
                space.step(scene.dt)
        return np.array([*block.position, block.angle], float)

    def _path(self, agent: np.ndarray, goal: np.ndarray, pose: np.ndarray) -> list[np.ndarray] | None:
        """Targets at most ``speed`` apart from ``agent`` to ``goal`` (exclusive) around the T at ``pose``; None if
        there is no way.

        Shortest path on the visibility graph of the T's outline grown by the agent's radius plus a margin.
        """
        rotation = _rotation(pose[2])
        shape = sg.Polygon(T_OUTLINE @ rotation.T + pose[:2])
        obstacle = shape.buffer(AGENT_RADIUS + 4, join_style="mitre")
        corners = [np.array(point) for point in
                   shape.buffer(AGENT_RADIUS + 2 * (self.clearance - AGENT_RADIUS) + 6, join_style="mitre").exterior.coords[:-1]]
        nodes = [agent, goal, *corners]

        touching = shape.buffer(AGENT_RADIUS - 2)  # the agent may start against the T, but not move into it

        def free(a: np.ndarray, b: np.ndarray, blocked: sg.Polygon) -> bool:
            return not sg.LineString([a, b]).intersects(blocked) if np.any(a != b) else True

        edges = {i: [] for i in range(len(nodes))}
        for i, j in itertools.combinations(range(len(nodes)), 2):
            if free(nodes[i], nodes[j], touching if i == 0 else obstacle):
                cost = float(np.linalg.norm(nodes[i] - nodes[j]))
                edges[i].append((j, cost))
                edges[j].append((i, cost))
        route = _shortest(edges, 0, 1)
        if not route:
            return None
        waypoints = [nodes[i] for i in route]
        targets = []
        for a, b in zip(waypoints, waypoints[1:]):
            pieces = max(1, int(np.ceil(np.linalg.norm(b - a) / self.speed)))
            targets += [a + (b - a) * (k + 1) / pieces for k in range(pieces)]
        return [np.clip(t, *WORKSPACE) for t in targets[:-1]]


def _shortest(edges: dict[int, list[tuple[int, float]]], source: int, sink: int) -> list[int]:
    """Dijkstra's shortest path from ``source`` to ``sink`` as node indices; [] if there is none."""
    distance, previous, queue = {source: 0.0}, {}, [(0.0, source)]
    while queue:
        cost, node = heapq.heappop(queue)
        if node == sink:
            path = [sink]
            while path[-1] != source:
                path.append(previous[path[-1]])
            return path[::-1]
        if cost > distance.get(node, np.inf):
            continue
        for neighbour, step in edges[node]:
            if cost + step < distance.get(neighbour, np.inf):
                distance[neighbour], previous[neighbour] = cost + step, node
                heapq.heappush(queue, (cost + step, neighbour))
    return []
