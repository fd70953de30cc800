"""The model zoo shipped with the package: trained agents and the default checkpoints of the envs that need one.

``zoo:NAME`` works wherever a model path does (``evaluate``, ``bench``, ``export-schedule``, ``parse_controller``,
an env's checkpoint kwarg); ``adaptstep zoo list`` shows the entries, ``adaptstep zoo rebuild NAME`` retrains one
with its recorded commands and ``adaptstep zoo add NAME RUN_DIR`` adds a finished training run (see ``store``).
"""

from adaptstep.zoo.store import (
    ZOO_DIR,
    add_run,
    build,
    entry,
    is_zoo_spec,
    load_manifest,
    rebuild,
    resolve,
    resolve_agent,
    verified_folder,
    zoo_path,
)

__all__ = ["ZOO_DIR", "add_run", "build", "entry", "is_zoo_spec", "load_manifest", "rebuild", "resolve", "resolve_agent",
           "verified_folder", "zoo_path"]
