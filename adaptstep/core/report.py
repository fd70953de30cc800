"""Markdown helpers for BENCHMARKS.md: the machine, tables, and replacing one benchmark's section."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from adaptstep.io import atomic_write_text, file_lock


def machine_description(packages: tuple[str, ...] = ("numpy", "numba", "rebound", "torch", "stable-baselines3")) -> str:
    """The machine in one line: CPU, cores, Python and the versions of ``packages``."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.3g}") -> str:
    """A GitHub table without the optional ``tabulate`` dependency."""
    def cell(value: object) -> str:
        return float_format.format(value) if isinstance(value, float) else str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def section_figure(markdown: str | Path, name: str, explicit: str | Path | None = None) -> tuple[Path, str]:
    """Where a section's figure is written, and its link relative to the markdown file.

    The default sits beside the ``markdown`` file, so a table written elsewhere (``--out logs/x.md``) never
    replaces a figure of BENCHMARKS.md.

    Args:
        markdown: The markdown file the section belongs to.
        name: The section's name.
        explicit: The figure's path; None for ``benchmarks/NAME.png`` beside ``markdown``.

    Returns:
        The figure's path and its link relative to ``markdown``.
    """
    folder = Path(markdown).parent
    path = Path(explicit) if explicit is not None else folder / "benchmarks" / f"{name}.png"
    return path, Path(os.path.relpath(path, folder)).as_posix()


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replace the section between ``<!-- bench:NAME -->`` markers in ``path`` (appended when absent).

    The read and the write happen under a lock file beside ``path`` (``.NAME.md.lock``), so two benchmarks that
    finish at once both land; the write is atomic.
    """
    path = Path(path)
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    with file_lock(path):
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            text = before + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        atomic_write_text(path, text)
