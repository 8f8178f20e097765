"""Fitted models as artifacts: a registry per kind of model, and a pickle-free file format.

A model object (a decoder, a dimensionality reducer) describes itself by
``get_model_state() -> (params, arrays)``, JSON-able constructor parameters and named numpy
arrays, and is rebuilt by the class method ``from_model_state(params, arrays)``;
:class:`StatefulModel` implements both for models whose fitted state is a list of
attributes. A :class:`ModelRegistry` maps short names to classes and packs a model into one
``.npz`` byte string whose header (a JSON document) names its class. Loading reads the file
with ``allow_pickle=False``, so a model taken from the object store never runs code from it.

Example
-------
>>> import numpy as np
>>> SCALERS = ModelRegistry("scaler")
>>> @SCALERS.register("mean")
... class MeanScaler(StatefulModel):
...     state_attributes = ("mean_",)
...     def __init__(self, *, offset=0.0):
...         self.offset = offset
...     def fit(self, x):
...         self.mean_ = np.mean(x, axis=0) + self.offset
...         return self
>>> data = SCALERS.save(MeanScaler(offset=1.0).fit(np.ones((4, 2))), metadata={"note": "demo"})
>>> model, metadata = SCALERS.load(data)
>>> model.offset, model.mean_.tolist(), metadata
(1.0, [2.0, 2.0], {'note': 'demo'})
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable, ClassVar

import numpy as np

__all__ = ["ModelRegistry", "StatefulModel"]

_META_KEY = "__neuromesh_model__"


class StatefulModel:
    """Default state methods: constructor parameters plus the attributes in ``state_attributes``.

    Mix into a scikit-learn estimator (``get_params`` must exist; a plain class gets the
    keyword-only ``__init__`` arguments stored under their own names, the scikit-learn rule).
    """

    #: fitted attributes saved by :meth:`get_model_state`: numpy arrays or numbers
    state_attributes: ClassVar[tuple[str, ...]] = ()

    def _constructor_params(self) -> dict[str, Any]:
        get_params = getattr(self, "get_params", None)
        if get_params is not None:
            return get_params(deep=False)
        import inspect
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY]
        return {name: getattr(self, name) for name in names}

    def get_model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able constructor parameters, and the fitted arrays by name."""
        missing = [a for a in self.state_attributes if not hasattr(self, a)]
        if missing:
            raise ValueError(f"{type(self).__name__} is not fitted (no {missing[0]})")
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._constructor_params().items()}
        return params, {a: np.asarray(getattr(self, a)) for a in self.state_attributes}

    @classmethod
    def from_model_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]):
        model = cls(**params)
        for name in cls.state_attributes:
            if name not in arrays:
                raise ValueError(f"the saved {cls.__name__} lacks its array {name!r}")
            value = arrays[name]
            setattr(model, name, value.item() if value.ndim == 0 else value)
        return model


class ModelRegistry(dict):
    """Model classes of one kind by name, and the ``.npz`` format that stores their instances.

    Parameters
    ----------
    kind : str
        What the models are ("decoder", "reducer"), used in messages.
    name_attribute : str
        Class attribute that :meth:`register` sets to the registered name.
    """

    def __init__(self, kind: str, *, name_attribute: str = "model_name") -> None:
        super().__init__()
        self.kind = kind
        self.name_attribute = name_attribute

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make a model class available under ``name``."""
        def add(cls: type) -> type:
            if name in self and self[name] is not cls:
                raise ValueError(f"{self.kind} name {name!r} is taken by {self[name].__name__}")
            setattr(cls, self.name_attribute, name)
            self[name] = cls
            return cls
        return add

    def save(self, model: Any, *, metadata: dict[str, Any] | None = None) -> bytes:
        """``model`` as ``.npz`` bytes: its arrays plus one JSON header (class name, params, metadata)."""
        name = getattr(model, self.name_attribute, "")
        if not name or self.get(name) is not type(model):
            raise ValueError(f"{type(model).__name__} is not a registered {self.kind}")
        params, arrays = model.get_model_state()
        if _META_KEY in arrays:
            raise ValueError(f"array name {_META_KEY!r} is reserved")
        header = json.dumps({self.kind: name, "params": params, "format": 1, "metadata": metadata or {}})
        buffer = io.BytesIO()
        np.savez(buffer, **{_META_KEY: np.frombuffer(header.encode(), dtype=np.uint8)}, **arrays)
        return buffer.getvalue()

    def load(self, data: bytes) -> tuple[Any, dict[str, Any]]:
        """The model saved by :meth:`save` and its metadata; ValueError for anything else."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            header = json.loads(arrays.pop(_META_KEY).tobytes().decode())
            name, params, metadata = header[self.kind], header["params"], header.get("metadata", {})
        except Exception as exc:  # zipfile, KeyError, JSON, pickle refusal: all mean "not a model"
            raise ValueError(f"not a saved NeuroMesh {self.kind}: {exc}") from None
        if name not in self:
            raise ValueError(f"the saved model is a {name!r} {self.kind}, which this service does not know "
                             f"(known: {sorted(self)})")
        try:
            return self[name].from_model_state(params, arrays), metadata
        except (TypeError, KeyError) as exc:
            raise ValueError(f"the saved {name!r} {self.kind} is malformed: {exc}") from None
