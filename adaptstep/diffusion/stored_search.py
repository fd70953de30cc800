"""Searched schedules stored as zoo entries, so a ``search:`` baseline plays a search instead of redoing it.

A search (``search.searched_schedule``) is a pure function of its key: the method, the env's model, NFE, batch size,
reference steps and third-order variant, the solver, the search batches and the method's options (its seed among
them). ``adaptstep search-schedule`` runs one and writes key and result to a JSON file; ``adaptstep zoo add NAME FILE
--command ...`` ships it (kind ``schedule``). ``searched_schedule`` then returns the shipped result of the same key
instead of searching again (minutes on a CPU at every ``evaluate --baselines``).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adaptstep.diffusion.search import SEARCHES, SearchResult
from adaptstep.io import atomic_write_text

KIND = "schedule"
SEARCH_ARGUMENTS = ("model", "nfe", "solver", "batch_size", "batches", "reference_steps", "third_order")


def search_key(method: str, model: str, nfe: int, solver: str = "dpmpp2m", batch_size: int = 128,
               batches: int = 16, reference_steps: int = 128, third_order: str = "exact", **options: Any
               ) -> dict[str, Any]:
    """Everything a search's result depends on (``searched_schedule``'s arguments, the method's defaults filled in),
    as JSON values."""
    parameters = inspect.signature(SEARCHES[method]).parameters.values()
    settings = {parameter.name: parameter.default for parameter in parameters
                if parameter.default is not parameter.empty and parameter.name not in SEARCH_ARGUMENTS}
    settings.update(options)
    return {"method": method, "model": model, "nfe": int(nfe), "solver": solver, "batch_size": int(batch_size),
            "batches": int(batches), "reference_steps": int(reference_steps), "third_order": third_order,
            "options": {key: list(value) if isinstance(value, tuple) else value for key, value in sorted(settings.items())}}


def save_search(path: str | Path, key: dict[str, Any], result: SearchResult) -> Path:
    """Write a search's key and result to ``path`` (JSON, atomically); returns ``path``."""
    atomic_write_text(Path(path), json.dumps({"search": key, "result": asdict(result)}, indent=2) + "\n")
    return Path(path)


def load_search(path: str | Path) -> tuple[dict[str, Any], SearchResult]:
    """The key and result ``save_search`` wrote.

    Raises:
        ValueError: If ``path`` holds no stored search.
    """
    try:
        data = json.loads(Path(path).read_text())
        result = data["result"]
        return data["search"], SearchResult(**{**result, "times": tuple(result["times"]),
                                               "orders": tuple(result["orders"])})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a stored schedule search ({type(error).__name__})") from None


def stored_search(key: dict[str, Any], folder: str | Path | None = None) -> SearchResult | None:
    """The result of the search ``key`` in the zoo at ``folder`` (None: the shipped zoo; each file checked against
    its sha256), or None if it holds none."""
    from adaptstep.zoo import ZOO_DIR, load_manifest, resolve  # here: the zoo's module imports the agents

    folder = ZOO_DIR if folder is None else folder
    for name, record in load_manifest(folder).items():
        if record["kind"] == KIND:
            stored, result = load_search(resolve(f"zoo:{name}", folder)[0])
            if stored == key:
                return result
    return None


def describe_schedule(path: str | Path) -> dict[str, Any]:
    """The zoo's record of a stored search (``Family.checkpoints``): its model and NFE, method and search seconds.

    Raises:
        ValueError: If ``path`` holds no stored search.
    """
    key, result = load_search(path)
    return {"task": f"{key['model']}, NFE {key['nfe']}", "algo": f"search:{key['method']},solver={key['solver']}",
            "train_seconds": round(result.seconds, 1)}
