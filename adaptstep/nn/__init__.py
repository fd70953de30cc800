"""The project's shared torch toolkit, imported by the families and importing none of them.

- ``device``: ``resolve_device``.
- ``checkpoints``: config, CPU weights and metadata of a small model in one atomically written file.
- ``training``: settings checks, one Adam step with the EMA update, the loss curve.
- ``layers``: building blocks shared by the families' networks (``ResidualBlock``).
- ``schedules``, ``timesteps``, ``denoisers``, ``solvers``, ``time_shift``: the DPM-Solver math (VP noise
  schedules, hand-made timestep schedules, the x̂0-denoiser protocol, PF-ODE solvers with exact NFE accounting).
- ``gmm``: Gaussian mixtures with their exact denoiser, score and log-density.
- ``data``: the small training data sets (digits, two moons, checkerboard).
- ``classifier``: the two digit classifiers (Fréchet features, guidance reward, held-out verifier).
- ``weights``: the one manifest of every shipped weight (``pretrained/``), sha256-checked loading, rebuilding.
"""
