"""Flow models on the linear interpolant x_t = (1 − t)·x0 + t·ε (t = 1 noise, t = 0 data) and inference-time
scaling for them (plain torch)."""

from adaptstep.flow.rectified import FlowConfig, FlowNet, load_flow, save_flow, train_flow

__all__ = ["FlowConfig", "FlowNet", "load_flow", "save_flow", "train_flow"]
