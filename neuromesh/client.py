"""The NeuroMesh Python SDK under its short name: ``from neuromesh.client import Client``.

Everything public of :mod:`neuromesh.sdk` is here: the :class:`Client`, the network builders,
the result and error classes.

Example
-------
>>> from neuromesh.client import Client, InvalidArgument
>>> try:
...     Client().simulation.simulate({"vogels_abbott": {"kind": "cuba"}}, duration_ms=0.0)
... except InvalidArgument as err:
...     print(err.field)
duration_ms
"""

from neuromesh.sdk import *  # noqa: F401,F403  (the SDK's public names, re-exported)
from neuromesh.sdk import __all__  # noqa: F401
