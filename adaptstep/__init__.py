"""adaptstep: learned adaptive stepping for stepped numerical processes.

Importing the package registers every Gymnasium env id (``adaptstep/ThreeBody-v0``, ...).
"""

from adaptstep import envs as _envs  # noqa: F401  (registers the env ids)
from adaptstep.evaluation import evaluate, summarize

__version__ = "0.1.0"
__all__ = ["evaluate", "summarize", "__version__"]
