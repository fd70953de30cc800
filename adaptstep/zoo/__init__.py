"""The model zoo shipped with the package: trained agents and the default checkpoints of the envs that need one.

``zoo:NAME`` works wherever a model path does (``evaluate``, ``bench``, ``export-schedule``, ``parse_controller``,
an env's checkpoint kwarg); ``adaptstep zoo list`` shows the entries, ``adaptstep zoo rebuild NAME`` retrains one
with its recorded commands, ``adaptstep zoo add NAME RUN_DIR`` adds a finished training run and ``adaptstep zoo add
NAME FILE --command CMD`` an existing checkpoint of a family's kind (planner, dual system, ...; see ``store``).
"""

from adaptstep.zoo.store import (
    ZOO_DIR,
    add_files,
    add_run,
    build,
    describe_checkpoint,
    entry,
    is_zoo_spec,
    load_manifest,
    rebuild,
    resolve,
    resolve_agent,
    verified_folder,
    zoo_path,
)

__all__ = ["ZOO_DIR", "add_files", "add_run", "build", "describe_checkpoint", "entry", "is_zoo_spec", "load_manifest",
           "rebuild", "resolve", "resolve_agent", "verified_folder", "zoo_path"]
