"""Flow models on the linear interpolant x_t = (1 − t)·x0 + t·ε (t = 1 noise, t = 0 data) and inference-time
scaling for them (plain torch): the ODE/SDE sampler with the VP conversion, verifiers, and budgeted search
methods (best-of-N, Search over Paths, SMC/FK, SVDD, the linear schedule, rollover budget forcing)."""

from adaptstep.flow.chains import QUOTA_POLICIES, LinearQuota, QuotaChains, RolloverQuota, UniformQuota
from adaptstep.flow.gmm_flow import GMMFlow, gmm_flow_2d, gmm_flow_64d
from adaptstep.flow.interpolants import LinearInterpolant, VPConvertedFlow, VPInterpolant
from adaptstep.flow.methods import METHODS, run_method
from adaptstep.flow.pretrained import FLOW_FILES, pretrained_flow
from adaptstep.flow.rectified import FlowConfig, FlowNet, load_flow, save_flow, train_flow
from adaptstep.flow.result import SearchResult
from adaptstep.flow.sampler import MODES, FlowSampler
from adaptstep.flow.tasks import FLOW_TASKS, Task, make_task
from adaptstep.flow.verifiers import Verifier, class_probability, sub_mixture_log_density

__all__ = [
    "FLOW_FILES", "FLOW_TASKS", "FlowConfig", "FlowNet", "FlowSampler", "GMMFlow", "LinearInterpolant",
    "LinearQuota", "METHODS", "MODES", "QUOTA_POLICIES", "QuotaChains", "RolloverQuota", "SearchResult", "Task",
    "UniformQuota",
    "VPConvertedFlow", "VPInterpolant", "Verifier", "class_probability", "gmm_flow_2d", "gmm_flow_64d",
    "load_flow", "make_task", "pretrained_flow", "run_method", "save_flow", "sub_mixture_log_density", "train_flow",
]
