"""adaptstep: learned adaptive stepping for stepped numerical processes.

Importing the package registers every family's Gymnasium env ids (``adaptstep/ThreeBody-v0``, ...; see
``adaptstep.core.registry``).
"""

from adaptstep._version import __version__
from adaptstep.core.registry import families
from adaptstep.evaluation import evaluate, summarize

families()  # registers the env ids of every installed family

__all__ = ["evaluate", "summarize", "__version__"]
