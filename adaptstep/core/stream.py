"""Rows streamed to disk as episodes finish, so that an interrupted benchmark keeps every finished episode.

``Benchmark.run`` opens a stream (``row_stream``) around its ``measure``; the harness appends every row it finishes
to the open stream (``stream_row``), one JSON object per line: a benchmark may mix tables of several envs, so the
rows need not share columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

_STREAM: ContextVar[Path | None] = ContextVar("adaptstep_row_stream", default=None)


@contextmanager
def row_stream(path: str | Path) -> Iterator[Path]:
    """Within the block, every harness row is appended to ``path`` (a JSON-lines file, emptied first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    token = _STREAM.set(path)
    try:
        yield path
    finally:
        _STREAM.reset(token)


def stream_row(row: Mapping[str, Any]) -> None:
    """Append ``row`` to the open stream, if any (and flush it)."""
    path = _STREAM.get()
    if path is not None:
        with path.open("a") as file:
            file.write(json.dumps(dict(row), default=_plain) + "\n")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
