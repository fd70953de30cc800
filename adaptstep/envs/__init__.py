"""Thin Gymnasium wrappers around adaptstep's processes; importing this module registers them.

``gym.make`` wraps every env in :class:`adaptstep.envs.wrappers.WallTime`, which adds ``info["wall_time"]``.
"""

from gymnasium.envs.registration import WrapperSpec, register, registry

ENV_IDS: dict[str, str] = {
    "adaptstep/ThreeBody-v0": "adaptstep.envs.threebody:ThreeBodyEnv",
    "adaptstep/DiffusionSampler-v0": "adaptstep.envs.diffusion:DiffusionSamplerEnv",
    "adaptstep/BudgetForcing-v0": "adaptstep.envs.budget:BudgetForcingEnv",
    "adaptstep/PlannerBudget-v0": "adaptstep.envs.planner:PlannerBudgetEnv",
    "adaptstep/DualSystem-v0": "adaptstep.envs.dual_system:DualSystemEnv",
}
WALL_TIME = WrapperSpec("WallTime", "adaptstep.envs.wrappers:WallTime", {})

for _env_id, _entry_point in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point, additional_wrappers=(WALL_TIME,))
