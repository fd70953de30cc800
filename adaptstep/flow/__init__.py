"""Flow models on the linear interpolant and inference-time scaling for them (plain torch).

The interpolant is x_t = (1 − t)·x0 + t·ε (t = 1 noise, t = 0 data). The package holds the ODE/SDE sampler with
the VP conversion, verifiers, and budgeted search methods (best-of-N, Search over Paths, SMC/FK, SVDD, the linear
schedule, rollover budget forcing), the strongest of them chosen on tuning seeds, and the headroom any allocation
could gain over it.
"""

from adaptstep.core.lazy import lazy_exports

EXPORTS = {
    "QUOTA_POLICIES": "adaptstep.flow.chains",
    "LinearQuota": "adaptstep.flow.chains",
    "QuotaChains": "adaptstep.flow.chains",
    "RolloverQuota": "adaptstep.flow.chains",
    "UniformQuota": "adaptstep.flow.chains",
    "GMMFlow": "adaptstep.flow.gmm_flow",
    "gmm_flow_2d": "adaptstep.flow.gmm_flow",
    "gmm_flow_64d": "adaptstep.flow.gmm_flow",
    "LinearInterpolant": "adaptstep.flow.interpolants",
    "VPConvertedFlow": "adaptstep.flow.interpolants",
    "VPInterpolant": "adaptstep.flow.interpolants",
    "METHODS": "adaptstep.flow.methods",
    "run_method": "adaptstep.flow.methods",
    "TiltedQuota": "adaptstep.flow.oracle",
    "allocation_headroom": "adaptstep.flow.oracle",
    "FLOW_FILES": "adaptstep.flow.pretrained",
    "pretrained_flow": "adaptstep.flow.pretrained",
    "FlowConfig": "adaptstep.flow.rectified",
    "FlowNet": "adaptstep.flow.rectified",
    "load_flow": "adaptstep.flow.rectified",
    "save_flow": "adaptstep.flow.rectified",
    "train_flow": "adaptstep.flow.rectified",
    "SearchResult": "adaptstep.flow.result",
    "MODES": "adaptstep.flow.sampler",
    "candidates": "adaptstep.flow.strongest",
    "select_strongest": "adaptstep.flow.strongest",
    "FlowSampler": "adaptstep.flow.sampler",
    "FLOW_TASKS": "adaptstep.flow.tasks",
    "Task": "adaptstep.flow.tasks",
    "make_task": "adaptstep.flow.tasks",
    "Verifier": "adaptstep.flow.verifiers",
    "class_probability": "adaptstep.flow.verifiers",
    "sub_mixture_log_density": "adaptstep.flow.verifiers",
}
__all__ = sorted(EXPORTS)
__getattr__ = lazy_exports(__name__, EXPORTS)
