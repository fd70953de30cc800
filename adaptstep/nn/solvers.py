"""Probability-flow ODE solvers for x̂0-predicting denoisers, steppable one step at a time, with exact NFE.

Notation (Lu et al. 2022, "DPM-Solver++", arXiv 2211.01095): λ = log α − log σ, h = λ_next − λ_t,
φ1 = expm1(−h), φ2 = φ1/h + 1, φ3 = φ2/h − ½, m = x̂0. EDM variables (Karras et al. 2022):
σ̃ = σ/α = e^{−λ}, x̃ = x/α, dx̃/dσ̃ = (x̃ − D(x̃; σ̃))/σ̃ with D the x̂0 prediction.
Every step evaluates the denoiser on the whole batch at one shared time (one call = one NFE).
"""

import math
from collections.abc import Sequence

import torch

from adaptstep.nn.denoisers import Denoiser
from adaptstep.nn.schedules import NoiseSchedule
from adaptstep.nn.time_shift import TimeShift

ORDERS = (1, 2, 3)
MULTISTEP_SOLVERS = {"ddim": 1, "dpmpp2m": 2, "dpmpp3m": 3}  # DPM-Solver++ multistep solver names → order
UNIPC_SOLVERS = {f"unipc{order}-{variant}": (order, variant) for variant in ("bh1", "bh2") for order in ORDERS}
LOWER_ORDER_FINAL_BELOW = 10  # DPM-Solver's code lowers the final orders only when steps < 10
# Final-order rules, named after what they do: "always" lowers step i's order to the NFE left (steps − i) at every
# budget (diffusers' UniPCMultistepScheduler); "below15" only when steps < 15 (diffusers'
# DPMSolverMultistepScheduler, its docstring's and DPM-Solver's docstring's rule); "below10" only when steps < 10
# (DPM-Solver's code); "never" keeps the order. Steps from the value on lower at no budget.
FINAL_ORDER_RULES = {"always": math.inf, "below15": 15, "below10": LOWER_ORDER_FINAL_BELOW, "never": 0}


def _time_value(value: torch.Tensor | float, name: str) -> float:
    """A time as a float (a tensor's value exactly: float64 holds any float32), checked to be a finite scalar."""
    if isinstance(value, torch.Tensor) and value.ndim != 0:
        raise ValueError(f"{name} must be a finite scalar, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite scalar, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite scalar, got {value!r}")
    return number


def _step_values(x: torch.Tensor, t, t_next) -> tuple[torch.Tensor, float, float]:
    """The step's t as a float64 scalar on x's device (for the denoiser: the schedule's coefficients stay float64
    whatever x's dtype, as a float32 t cannot tell apart times closer than ~1e-7 and λ needs them distinct) and
    t, t_next as floats (for the solvers' coefficients), after checking 0 <= t_next < t."""
    if x.ndim != 2:
        raise ValueError(f"x must have shape (batch, d), got {tuple(x.shape)}")
    t_value, t_next_value = _time_value(t, "t"), _time_value(t_next, "t_next")
    if not (0 <= t_next_value < t_value):
        raise ValueError(f"need 0 <= t_next < t, got t={t_value}, t_next={t_next_value}")
    return torch.tensor(t_value, dtype=torch.float64, device=x.device), t_value, t_next_value


def _step_times(x: torch.Tensor, t, t_next) -> tuple[torch.Tensor, torch.Tensor]:
    """t and t_next as float64 scalars on x's device, after checking 0 <= t_next < t (``_step_values``)."""
    t, _, t_next_value = _step_values(x, t, t_next)
    return t, torch.tensor(t_next_value, dtype=torch.float64, device=x.device)


class _Stepper:
    """A denoiser on a schedule that counts its own NFE."""

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule) -> None:
        self.denoiser, self.schedule = denoiser, schedule
        self.nfe = 0

    def _denoise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.denoiser.predict_x0(x, t)


class DPMSolverPlusPlus(_Stepper):
    """Multistep DPM-Solver++ (data prediction, in λ) with a free order at every step.

    ``step(x, t, t_next, order)`` evaluates x̂0 at (x, t) (1 NFE), stores (λ_t, x̂0) and advances with
    order 1 (DDIM), 2 (2M) or 3 (3M) using the last ``order`` stored values, so ``order`` may be at most
    one more than the number of stored values (at most 3 are kept). Orders may change from step to step;
    the history spacing enters through r0 = h0/h and r1 = h1/h.

    On the 3M update: the exact Taylor term is −α φ3 h² m'' (∫₀ʰ e^{u−h} u²/2 du = −h² φ3),
    but DPM-Solver's ``multistep_dpm_solver_third_update`` (and diffusers') multiplies φ3 by
    D2 = (D1_0 − D1_1)/(r0 + r1) ≈ h² m''/2, half of it, so its local error is O(h³) and it converges at
    order 2 only (measured slope 2.2 against 3.1 on the GMM tests). ``"exact"`` (default) uses 2·D2 and converges at
    order 3; ``"dpmsolver"`` reproduces DPM-Solver's code, for comparisons with published numbers.

    Args:
        denoiser: The x̂0-predicting denoiser.
        schedule: Its noise schedule.
        solver_type: The 2M variant: ``"dpmsolver"`` (as DPM-Solver's sampler) or ``"taylor"``.
        third_order: The 3M update: ``"exact"`` (2·D2) or ``"dpmsolver"`` (DPM-Solver's code).
        time_shift: TS-DPM (see ``adaptstep.nn.time_shift``): the denoiser is evaluated at per-sample shifted
            times on every step but a trajectory's first (x_T is exact noise, as in TS-DPM); λ, h and the stored
            history keep the unshifted t. None leaves the sampler unchanged.

    Attributes:
        nfe: Denoiser calls so far (kept across ``reset``).
        last_ddim_update: The order-1 part of the last step, for local error estimates.

    Raises:
        ValueError: If ``solver_type``, ``third_order`` or ``time_shift`` is not one of the above.
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, solver_type: str = "dpmsolver",
                 third_order: str = "exact", time_shift: TimeShift | None = None) -> None:
        if solver_type not in ("dpmsolver", "taylor"):
            raise ValueError(f"solver_type must be 'dpmsolver' or 'taylor', got {solver_type!r}")
        if third_order not in ("exact", "dpmsolver"):
            raise ValueError(f"third_order must be 'exact' or 'dpmsolver', got {third_order!r}")
        super().__init__(denoiser, schedule)
        if time_shift is not None and not isinstance(time_shift, TimeShift):
            raise ValueError(f"time_shift must be None or a TimeShift, got {time_shift!r}")
        self.solver_type, self.third_order, self.time_shift = solver_type, third_order, time_shift
        self._lambdas: list[float] = []
        self._x0s: list[torch.Tensor] = []
        self.last_ddim_update: torch.Tensor | None = None

    @property
    def history_length(self) -> int:
        """How many (λ, x̂0) pairs are stored (at most 3)."""
        return len(self._x0s)

    @property
    def latest_x0(self) -> torch.Tensor | None:
        """The x̂0 of the last denoiser call (None before the first step)."""
        return self._x0s[-1] if self._x0s else None

    @property
    def max_order(self) -> int:
        """The highest order the next step may use."""
        return min(3, self.history_length + 1)

    def reset(self) -> None:
        """Forget the history (a new trajectory); the NFE count is kept."""
        self._lambdas, self._x0s = [], []

    def step(self, x: torch.Tensor, t, t_next, order: int) -> torch.Tensor:
        """One step from x at t to t_next (1 NFE).

        Args:
            x: The samples at t, shape (batch, d).
            t (torch.Tensor | float): The current time, less noisy than the previous step's.
            t_next (torch.Tensor | float): The next time, 0 <= t_next < t.
            order: 1, 2 or 3, at most ``max_order``; 1 when t_next = 0.

        Returns:
            The samples at t_next.

        Raises:
            ValueError: If the times or the order are out of range.
        """
        if order not in ORDERS or order > self.max_order:
            raise ValueError(f"order must be in {ORDERS} and <= {self.max_order} "
                             f"(history of {self.history_length}), got {order!r}")
        t, t_value, t_next_value = _step_values(x, t, t_next)
        if t_next_value == 0 and order > 1:
            raise ValueError(f"order must be 1 when t_next = 0 (denoising to zero), got {order}")
        schedule = self.schedule
        lam = schedule.lambda_scalar(t_value)
        if self._lambdas and not lam > self._lambdas[-1]:
            raise ValueError("t must be earlier (less noisy) than the previous step's t")
        self._lambdas = (self._lambdas + [lam])[-3:]
        network_t = t if self.time_shift is None or not self._x0s else self.time_shift.network_times(x, t, schedule)
        self._x0s = (self._x0s + [self._denoise(x, network_t)])[-3:]
        x_next, self.last_ddim_update = _dpmpp_update(schedule, x, t_value, t_next_value, self._lambdas, self._x0s,
                                                      order, self.solver_type, self.third_order)
        return x_next


def _dpmpp_update(schedule: NoiseSchedule, x: torch.Tensor, t: float, t_next: float, lambdas: list[float],
                  x0s: list[torch.Tensor], order: int, solver_type: str, third_order: str) -> tuple[torch.Tensor,
                                                                                                    torch.Tensor]:
    """DPM-Solver++'s multistep update of ``order`` from x at t (λ_t = ``lambdas[-1]``, x̂0 there ``x0s[-1]``) to
    t_next; returns (x at t_next, its order-1 (DDIM) part, for local error estimates). The coefficients are floats
    (the schedule's ``*_scalar`` methods), in float64."""
    lam = lambdas[-1]
    h = schedule.lambda_scalar(t_next) - lam
    alpha_next = schedule.alpha_scalar(t_next)
    phi1 = math.expm1(-h)
    x_next = math.exp(schedule.log_sigma_scalar(t_next) - schedule.log_sigma_scalar(t)) * x \
        - alpha_next * phi1 * x0s[-1]
    if order == 1:
        return x_next, x_next
    r0 = (lambdas[-1] - lambdas[-2]) / h
    d1_0 = (x0s[-1] - x0s[-2]) / r0
    phi2 = phi1 / h + 1
    if order == 2:
        if solver_type == "dpmsolver":
            return x_next - 0.5 * alpha_next * phi1 * d1_0, x_next
        return x_next + alpha_next * phi2 * d1_0, x_next
    r1 = (lambdas[-2] - lambdas[-3]) / h
    d1_1 = (x0s[-2] - x0s[-3]) / r1
    d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)  # ≈ h² m''/2
    phi3 = phi2 / h - 0.5
    weight = 2.0 if third_order == "exact" else 1.0
    return x_next + alpha_next * phi2 * d1 - weight * alpha_next * phi3 * d2, x_next


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """The solution of a small dense linear system (Gaussian elimination with partial pivoting, in floats)."""
    n = len(vector)
    rows = [[*row, value] for row, value in zip(matrix, vector, strict=True)]
    for column in range(n):
        pivot = max(range(column, n), key=lambda row: abs(rows[row][column]))
        rows[column], rows[pivot] = rows[pivot], rows[column]
        for row in range(column + 1, n):
            factor = rows[row][column] / rows[column][column]
            rows[row] = [a - factor * b for a, b in zip(rows[row], rows[column], strict=True)]
    solution = [0.0] * n
    for row in reversed(range(n)):
        known = sum(rows[row][k] * solution[k] for k in range(row + 1, n))
        solution[row] = (rows[row][n] - known) / rows[row][row]
    return solution


def _unipc_rhos(h: float, ratios: list[float], order: int, variant: str,
                corrector: bool) -> tuple[float, float, list[float]]:
    """UniPC's coefficients as diffusers computes them (``multistep_uni_p_bh_update`` / ``..._c_..``):
    (φ1·h = expm1(−h), B(h), ρ). ``ratios`` are r_k = (λ_{s_k} − λ_{s0})/h of the k = 1…order−1 earlier points;
    the predictor's ρ solves the (order − 1)-system (½ for order 2), the corrector's the order-system with r = 1
    for the new point appended (½ for order 1)."""
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else math.expm1(hh)
    rks = [*ratios, 1.0]
    h_phi_k, factorial, rows, rhs = h_phi_1 / hh - 1, 1, [], []
    for i in range(1, order + 1):
        rows.append([r ** (i - 1) for r in rks])
        rhs.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    if corrector:
        rhos = [0.5] if order == 1 else _solve(rows, rhs)
    elif order == 1:
        rhos = []
    elif order == 2:
        rhos = [0.5]
    else:
        rhos = _solve([row[:-1] for row in rows[:-1]], rhs[:-1])
    return h_phi_1, b_h, rhos


class UniPC(_Stepper):
    """Multistep UniPC (Zhao et al. 2023, arXiv 2302.04867), data prediction, with a free order at every step.

    The update is that of diffusers' ``UniPCMultistepScheduler`` (``predict_x0=True``), in float64.
    ``step(x, t, t_next, order)`` evaluates x̂0 at (x, t) (1 NFE); unless the trajectory just started, it first
    corrects x with UniC of the previous step's order (the new x̂0 enters the corrector, no further NFE; x̂0 is not
    re-evaluated at the corrected x, as in UniPC), then predicts x at t_next with UniP of ``order`` from the
    corrected x. UniP-p is of order p and UniC raises it by one, but the last step is never corrected (that would
    need another NFE). ``order`` may be at most one more than the stored x̂0 (at most 3), as for
    ``DPMSolverPlusPlus``; ``t`` must be the previous step's ``t_next`` (the corrector refers to that step).

    Args:
        denoiser: The x̂0-predicting denoiser.
        schedule: Its noise schedule.
        variant: B(h): ``"bh1"`` (h) or ``"bh2"`` (e^h − 1, diffusers' default).

    Raises:
        ValueError: If ``variant`` is neither.
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, variant: str = "bh2") -> None:
        if variant not in ("bh1", "bh2"):
            raise ValueError(f"variant must be 'bh1' or 'bh2', got {variant!r}")
        super().__init__(denoiser, schedule)
        self.variant = variant
        self.reset()
        self.last_ddim_update: torch.Tensor | None = None

    history_length = DPMSolverPlusPlus.history_length
    latest_x0 = DPMSolverPlusPlus.latest_x0
    max_order = DPMSolverPlusPlus.max_order

    def reset(self) -> None:
        """Forget the history (a new trajectory); the NFE count is kept."""
        self._lambdas: list[float] = []
        self._x0s: list[torch.Tensor] = []
        self._times: list[float] = []
        self._last: tuple[torch.Tensor, float, int] | None = None  # (x the last predictor started from, t_next, order)

    def _update(self, x: torch.Tensor, t: float, lambdas: list[float], x0s: list[torch.Tensor],
                order: int, new_x0: torch.Tensor | None, variant: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """From x at the time of ``lambdas[-1]`` to t: UniP of ``order`` (``new_x0`` None) or UniC of ``order`` with
        ``new_x0`` the x̂0 at t, with B(h) ``variant`` (default ``self.variant``). Returns (x at t, its order-1 part)."""
        schedule, lam_s0, m0 = self.schedule, lambdas[-1], x0s[-1]
        s0 = self._times[-1]
        h = schedule.lambda_scalar(t) - lam_s0
        ratios = [(lambdas[-1 - k] - lam_s0) / h for k in range(1, order)]
        differences = [(x0s[-1 - k] - m0) / ratio for k, ratio in zip(range(1, order), ratios)]
        h_phi_1, b_h, rhos = _unipc_rhos(h, ratios, order, variant or self.variant, corrector=new_x0 is not None)
        alpha_t = schedule.alpha_scalar(t)
        first = math.exp(schedule.log_sigma_scalar(t) - schedule.log_sigma_scalar(s0)) * x - alpha_t * h_phi_1 * m0
        residual = sum((rho * d for rho, d in zip(rhos, differences)), torch.zeros_like(x))
        if new_x0 is not None:
            residual = residual + rhos[-1] * (new_x0 - m0)
        return first - alpha_t * b_h * residual, first

    def _check_step(self, x: torch.Tensor, t, t_next, order: int) -> tuple[torch.Tensor, float, float]:
        """t as a tensor and t, t_next as floats (``_step_values``), after checking the order, t_next > 0 and that t
        continues the last step."""
        if order not in ORDERS or order > self.max_order:
            raise ValueError(f"order must be in {ORDERS} and <= {self.max_order} "
                             f"(history of {self.history_length}), got {order!r}")
        t, t_value, t_next_value = _step_values(x, t, t_next)
        if t_next_value == 0:
            raise ValueError(f"{type(self).__name__} steps to t_next > 0 only (λ is infinite at 0)")
        if self._last is not None and t_value != self._last[1]:
            raise ValueError(f"t must be the previous step's t_next ({self._last[1]}), got {t_value}")
        return t, t_value, t_next_value

    def step(self, x: torch.Tensor, t, t_next, order: int) -> torch.Tensor:
        """Correct, then predict x at t_next > 0 (1 NFE); see the class docstring.

        Raises:
            ValueError: If the times or the order are out of range, or ``t`` is not the previous ``t_next``.
        """
        t, t_value, t_next_value = self._check_step(x, t, t_next, order)
        lam = self.schedule.lambda_scalar(t_value)
        x0 = self._denoise(x, t)
        if self._last is not None:
            last_x, _, last_order = self._last
            x, _ = self._update(last_x, t_value, self._lambdas, self._x0s, last_order, x0)
        self._lambdas = (self._lambdas + [lam])[-3:]
        self._x0s = (self._x0s + [x0])[-3:]
        self._times = (self._times + [t_value])[-3:]
        self._last = (x, t_next_value, order)
        x_next, self.last_ddim_update = self._update(x, t_next_value, self._lambdas, self._x0s, order, None)
        return x_next


SWITCHING_SOLVERS = ("dpmpp", "unipc-bh1", "unipc-bh2")  # the updates ``SwitchingSolver`` chooses among


class SwitchingSolver(UniPC):
    """A multistep solver whose update is chosen at every step among ``SWITCHING_SOLVERS``: ``"dpmpp"``
    (DPM-Solver++, ``solver_type="dpmsolver"`` 2M, ``third_order`` 3M) or ``"unipc-bh1"`` / ``"unipc-bh2"`` (UniPC's
    predictor with that B(h)), all from one history of x̂0.

    ``step(x, t, t_next, order, solver)`` evaluates x̂0 at (x, t) (1 NFE); if the previous step was a UniPC step,
    x is first corrected with UniC of that step's order and B(h) (the corrector belongs to the UniPC step, as in
    ``UniPC``; a DPM-Solver++ step is not corrected), then x moves to t_next with ``solver``'s update of ``order``.
    The same ``solver`` at every step reproduces ``DPMSolverPlusPlus`` (``solver_type="dpmsolver"``) or ``UniPC``
    exactly. ``solver`` None uses the default given to the constructor.
    """

    def __init__(self, denoiser: Denoiser, schedule: NoiseSchedule, solver: str = "dpmpp",
                 third_order: str = "exact") -> None:
        if solver not in SWITCHING_SOLVERS:
            raise ValueError(f"solver must be one of {SWITCHING_SOLVERS}, got {solver!r}")
        if third_order not in ("exact", "dpmsolver"):
            raise ValueError(f"third_order must be 'exact' or 'dpmsolver', got {third_order!r}")
        super().__init__(denoiser, schedule, "bh1")
        self.default, self.third_order = solver, third_order

    def reset(self) -> None:
        super().reset()
        self._last_variant: str | None = None  # B(h) of the last step if it was a UniPC step (to be corrected)

    def step(self, x: torch.Tensor, t, t_next, order: int, solver: str | None = None) -> torch.Tensor:
        solver = self.default if solver is None else solver
        if solver not in SWITCHING_SOLVERS:
            raise ValueError(f"solver must be one of {SWITCHING_SOLVERS}, got {solver!r}")
        t, t_value, t_next_value = self._check_step(x, t, t_next, order)
        lam = self.schedule.lambda_scalar(t_value)
        x0 = self._denoise(x, t)
        if self._last is not None and self._last_variant is not None:
            last_x, _, last_order = self._last
            x, _ = self._update(last_x, t_value, self._lambdas, self._x0s, last_order, x0, self._last_variant)
        self._lambdas = (self._lambdas + [lam])[-3:]
        self._x0s = (self._x0s + [x0])[-3:]
        self._times = (self._times + [t_value])[-3:]
        self._last = (x, t_next_value, order)
        if solver == "dpmpp":
            self._last_variant = None
            x_next, self.last_ddim_update = _dpmpp_update(self.schedule, x, t_value, t_next_value, self._lambdas,
                                                          self._x0s, order, "dpmsolver", self.third_order)
        else:
            self._last_variant = solver.split("-")[1]
            x_next, self.last_ddim_update = self._update(x, t_next_value, self._lambdas, self._x0s, order, None,
                                                         self._last_variant)
        return x_next


def final_order_rule(lower_order_final: bool | str) -> str:
    """The name of a final-order rule (``FINAL_ORDER_RULES``).

    Args:
        lower_order_final: True for DPM-Solver's code ("below10"), False for "never", or a rule's name.

    Raises:
        ValueError: If it is an unknown name.
    """
    if lower_order_final is True:
        return "below10"
    if lower_order_final is False:
        return "never"
    if lower_order_final not in FINAL_ORDER_RULES:
        raise ValueError(f"lower_order_final must be True, False or one of {list(FINAL_ORDER_RULES)}, "
                         f"got {lower_order_final!r}")
    return lower_order_final


def lowers_final_orders(lower_order_final: bool | str, steps: int) -> bool:
    """Whether the rule ``lower_order_final`` (see ``final_order_rule``) lowers the final orders of ``steps`` steps."""
    return steps < FINAL_ORDER_RULES[final_order_rule(lower_order_final)]


def multistep_orders(order: int, steps: int, lower_order_final: bool | str = True) -> list[int]:
    """Per-step orders for ``steps`` multistep steps: warm-up 1, 2, …, and lowered final orders where the rule says.

    Args:
        order: The highest order, 1, 2 or 3.
        steps: The number of steps (>= 1).
        lower_order_final: The final-order rule (see ``final_order_rule``): where it lowers at this budget
            (True: DPM-Solver's code, steps < 10), step i has order min(order, steps − i).

    Raises:
        ValueError: If ``order`` or ``steps`` is out of range or the rule is unknown.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be in {ORDERS}, got {order!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    lower = lowers_final_orders(lower_order_final, steps)
    return [min(order, i + 1, steps - i if lower else order) for i in range(steps)]


class EulerSolver(_Stepper):
    """Euler in EDM variables: x̃_next = x̃ + (σ̃_next − σ̃)(x̃ − D)/σ̃ (1 NFE). Algebraically this is DDIM."""

    def _euler(self, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Euler estimate of x̃ at t_next, and the slope dx̃/dσ̃ at t."""
        x_tilde, sigma = x / self.schedule.alpha(t), self.schedule.edm_sigma(t)
        slope = (x_tilde - self._denoise(x, t)) / sigma
        return x_tilde + (self.schedule.edm_sigma(t_next) - sigma) * slope, slope

    def step(self, x: torch.Tensor, t, t_next) -> torch.Tensor:
        """x at t_next, from x at t (0 <= t_next < t)."""
        t, t_next = _step_times(x, t, t_next)
        return self.schedule.alpha(t_next) * self._euler(x, t, t_next)[0]


class HeunSolver(EulerSolver):
    """EDM's Heun step (Karras et al. 2022, Alg. 1): Euler, then the trapezoidal corrector (2 NFE).

    The corrector uses the slope at t_next and is skipped only when σ̃_next = 0 (t_next = 0), as EDM does on its
    final step: EDM's 2N − 1 NFE comes from ending at σ̃ = 0; schedules ending at t_min > 0 cost 2N.
    """

    def step(self, x: torch.Tensor, t, t_next) -> torch.Tensor:
        """x at t_next, from x at t (0 <= t_next < t)."""
        t, t_next = _step_times(x, t, t_next)
        x_tilde = x / self.schedule.alpha(t)
        predicted, slope = self._euler(x, t, t_next)
        alpha_next, sigma_next = self.schedule.alpha(t_next), self.schedule.edm_sigma(t_next)
        if float(sigma_next) == 0:
            return alpha_next * predicted
        slope_next = (predicted - self._denoise(alpha_next * predicted, t_next)) / sigma_next
        return alpha_next * (x_tilde + (sigma_next - self.schedule.edm_sigma(t)) * 0.5 * (slope + slope_next))


SOLVERS = ("ddim", "dpmpp2m", "dpmpp3m", *UNIPC_SOLVERS, "euler", "heun")


def solver_order(solver: str) -> int:
    """The (highest) order of a multistep solver name of ``MULTISTEP_SOLVERS`` or ``UNIPC_SOLVERS``."""
    if solver in MULTISTEP_SOLVERS:
        return MULTISTEP_SOLVERS[solver]
    if solver in UNIPC_SOLVERS:
        return UNIPC_SOLVERS[solver][0]
    raise ValueError(f"solver must be one of {sorted(MULTISTEP_SOLVERS) + sorted(UNIPC_SOLVERS)}, got {solver!r}")


def _check_timesteps(timesteps) -> list[float]:
    times = [float(t) for t in timesteps]
    if len(times) < 2 or any(not b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"timesteps must hold at least 2 strictly decreasing times, got {times}")
    return times


def sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    timesteps: torch.Tensor | Sequence[float],
    solver: str = "dpmpp2m",
    lower_order_final: bool | str = True,
    solver_type: str = "dpmsolver",
    third_order: str = "exact",
    time_shift: TimeShift | None = None,
) -> tuple[torch.Tensor, int]:
    """Integrate the PF-ODE from x at timesteps[0] through every time in ``timesteps``.

    Args:
        denoiser: The x̂0-predicting denoiser.
        schedule: Its noise schedule.
        x: The samples at timesteps[0], shape (batch, d).
        timesteps: At least 2 strictly decreasing times.
        solver: ``"ddim"`` / ``"dpmpp2m"`` / ``"dpmpp3m"`` (multistep DPM-Solver++ with ``multistep_orders``;
            NFE = steps), ``"unipc{1,2,3}-{bh1,bh2}"`` (``UniPC`` of that order and B(h), same orders and NFE),
            ``"euler"`` (NFE = steps) or ``"heun"`` (NFE = 2·steps, one less if the last time is 0).
        lower_order_final: The final-order rule of the multistep solvers (see ``final_order_rule``).
        solver_type: As in ``DPMSolverPlusPlus``.
        third_order: As in ``DPMSolverPlusPlus``.
        time_shift: As in ``DPMSolverPlusPlus``; DPM-Solver++ solvers only.

    Returns:
        The samples at the last time, and the NFE spent.

    Raises:
        ValueError: For an unknown solver, a time shift with another solver, or timesteps that do not decrease.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if time_shift is not None and solver not in MULTISTEP_SOLVERS:
        raise ValueError(f"time_shift needs solver 'ddim', 'dpmpp2m' or 'dpmpp3m', got {solver!r}")
    times = _check_timesteps(timesteps)
    steps = len(times) - 1
    if solver in ("euler", "heun"):
        stepper = EulerSolver(denoiser, schedule) if solver == "euler" else HeunSolver(denoiser, schedule)
        for t, t_next in zip(times, times[1:]):
            x = stepper.step(x, t, t_next)
        return x, stepper.nfe
    if solver in UNIPC_SOLVERS:
        multistep = UniPC(denoiser, schedule, UNIPC_SOLVERS[solver][1])
    else:
        multistep = DPMSolverPlusPlus(denoiser, schedule, solver_type, third_order, time_shift)
    orders = multistep_orders(solver_order(solver), steps, lower_order_final)
    for t, t_next, order in zip(times, times[1:], orders):
        x = multistep.step(x, t, t_next, order)
    return x, multistep.nfe


def _singlestep(stepper: _Stepper, x: torch.Tensor, s: torch.Tensor, lam_s: torch.Tensor, h: torch.Tensor,
                t: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """DPM-Solver++'s singlestep pair from s to t (λ_t = λ_s + h) sharing the model evaluations:
    order 2: (first-order, second-order with r1 = ½); order 3: (second-order with r1 = ⅓,
    third-order with r1 = ⅓, r2 = ⅔), both 'dpmsolver' type. Returns (x_low, x_high); ``order`` NFE."""
    schedule = stepper.schedule
    log_sigma_s = schedule.log_sigma(s)

    def first_order(r: float, m_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(time, α, x) of the first-order update from s to λ_s + r h."""
        time = t if r == 1 else schedule.inverse_lambda(lam_s + r * h)
        alpha = schedule.alpha(time)
        return time, alpha, torch.exp(schedule.log_sigma(time) - log_sigma_s) * x - alpha * torch.expm1(-r * h) * m_s

    m_s = stepper._denoise(x, s)
    _, alpha_t, x_first = first_order(1.0, m_s)
    phi1 = torch.expm1(-h)
    r1 = 0.5 if order == 2 else 1 / 3
    s1, _, x_s1 = first_order(r1, m_s)
    m_s1 = stepper._denoise(x_s1, s1)
    x_second = x_first - 0.5 / r1 * alpha_t * phi1 * (m_s1 - m_s)
    if order == 2:
        return x_first, x_second
    r2 = 2 / 3
    s2, alpha_s2, x_s2 = first_order(r2, m_s)
    phi2_r2 = torch.expm1(-r2 * h) / (r2 * h) + 1
    m_s2 = stepper._denoise(x_s2 + r2 / r1 * alpha_s2 * phi2_r2 * (m_s1 - m_s), s2)
    x_third = x_first + alpha_t * (phi1 / h + 1) / r2 * (m_s2 - m_s)
    return x_second, x_third


def dpm_solver_adaptive(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    order: int = 3,
    t_start: float | None = None,
    t_end: float | None = None,
    atol: float = 0.0078,
    rtol: float = 0.05,
    theta: float = 0.9,
    h_init: float = 0.05,
    t_err: float = 1e-5,
    max_attempts: int = 100_000,
) -> tuple[torch.Tensor, int, int, int]:
    """Adaptive DPM-Solver-12 (order 2) or -23 (order 3) in λ, data-prediction form.

    After Lu et al. 2022 and Jolicoeur-Martineau et al. 2021. Each attempt costs ``order`` NFE (x̂0 at s is
    re-evaluated on every attempt, as in DPM-Solver's code). With δ = max(atol, rtol·max(|x_low|, |x_prev|)) and
    E = max over the batch of RMS((x_high − x_low)/δ), the step is accepted if E ≤ 1 (x ← x_high,
    x_prev ← x_low); always h ← min(θ h E^{−1/order}, λ_end − λ_s). Runs until |s − t_end| ≤ t_err; the
    final step lands on t_end exactly.

    Args:
        denoiser: The x̂0-predicting denoiser.
        schedule: Its noise schedule.
        x: The samples at t_start, shape (batch, d).
        order: 2 (DPM-Solver-12) or 3 (DPM-Solver-23).
        t_start: The first time; None for t_max.
        t_end: The last time (> 0); None for t_min.
        atol: The absolute tolerance (> 0).
        rtol: The relative tolerance (> 0).
        theta: The safety factor θ, in (0, 1].
        h_init: The first step in λ (> 0).
        t_err: The tolerance on reaching t_end (> 0).
        max_attempts: Accepted plus rejected steps before giving up.

    Returns:
        (x, nfe, accepted, rejected): the samples at t_end, the NFE and the accepted and rejected steps.

    Raises:
        ValueError: If a setting is out of range.
        RuntimeError: If ``max_attempts`` is exceeded or the error estimate is not finite.
    """
    if order not in (2, 3):
        raise ValueError(f"order must be 2 or 3, got {order!r}")
    for name, value in (("atol", atol), ("rtol", rtol), ("h_init", h_init), ("t_err", t_err)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {value}")
    if not 0 < theta <= 1:
        raise ValueError(f"theta must be in (0, 1], got {theta}")
    t_start = schedule.t_max if t_start is None else t_start
    t_end = schedule.t_min if t_end is None else t_end
    s, t_end = _step_times(x, t_start, t_end)
    if float(t_end) == 0:
        raise ValueError("t_end must be > 0")
    stepper = _Stepper(denoiser, schedule)
    lam_s, lam_end = schedule.lambda_(s), schedule.lambda_(t_end)
    h = min(h_init, float(lam_end - lam_s))
    x_prev, accepted, rejected = x, 0, 0
    while abs(float(s - t_end)) > t_err:
        if accepted + rejected >= max_attempts:
            raise RuntimeError(f"dpm_solver_adaptive exceeded max_attempts = {max_attempts}")
        h_tensor = torch.as_tensor(h, dtype=x.dtype, device=x.device)
        t = t_end if h >= float(lam_end - lam_s) else schedule.inverse_lambda(lam_s + h_tensor)
        x_low, x_high = _singlestep(stepper, x, s, lam_s, h_tensor, t, order)
        delta = torch.clamp(rtol * torch.maximum(x_low.abs(), x_prev.abs()), min=atol)
        error = float(((x_high - x_low) / delta).pow(2).mean(dim=1).sqrt().max())
        if not math.isfinite(error):
            raise RuntimeError(f"dpm_solver_adaptive: non-finite error estimate at t = {float(s)}")
        if error <= 1:
            x, x_prev, s, lam_s = x_high, x_low, t, schedule.lambda_(t)
            accepted += 1
        else:
            rejected += 1
        factor = math.inf if error == 0 else theta * error ** (-1 / order)
        h = min(h * factor, float(lam_end - lam_s))
    return x, stepper.nfe, accepted, rejected
