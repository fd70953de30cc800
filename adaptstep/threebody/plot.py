"""Orbit drawings: body tracks in the x–y plane, optionally coloured by a per-point value (e.g. η)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

BODY_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def draw_orbits(axes: Axes, positions: np.ndarray, values: np.ndarray | None = None, label: str = "η"):
    """Draw the bodies' tracks in the x–y plane on ``axes``, the last position marked by a dot.

    Args:
        axes: The axes to draw on.
        positions: Positions, shape (T, 3, 3), in au.
        values: A value per segment, shape (T−1,), colouring it on a log scale; None for one colour per body.
        label: The label of the coloured collection.

    Returns:
        (LineCollection | None): The colour-mapped collection (for a colour bar), or None without ``values``.
    """
    positions = np.asarray(positions)
    mappable = None
    for body in range(positions.shape[1]):
        track = positions[:, body, :2]
        if values is None:
            axes.plot(track[:, 0], track[:, 1], lw=1, color=BODY_COLOURS[body % 3])
        else:
            segments = np.stack([track[:-1], track[1:]], axis=1)
            mappable = LineCollection(segments, cmap="viridis", norm=LogNorm(np.min(values), np.max(values)), lw=1.5)
            mappable.set_array(np.asarray(values))
            mappable.set_label(label)
            axes.add_collection(mappable)
        axes.plot(*track[-1], "o", color=BODY_COLOURS[body % 3], ms=5)
    axes.set(aspect="equal", xlabel="x [au]", ylabel="y [au]")
    axes.autoscale_view()
    return mappable
