"""scikit-learn's parameter protocol, written once for every estimator.

An estimator lists its constructor's keyword arguments in ``_PARAMS``;
``get_params``/``set_params`` and a repr that shows only the non-default
values follow, so ``sklearn.base.clone`` and pipelines work without
importing scikit-learn.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, TypeVar

__all__ = ["Params"]

_P = TypeVar("_P", bound="Params")


class Params:
    """Mixin: ``get_params``, ``set_params`` and ``__repr__`` from ``_PARAMS``.

    Examples
    --------
    >>> class Scale(Params):
    ...     _PARAMS = ("factor",)
    ...     def __init__(self, *, factor=1.0):
    ...         self.factor = factor
    >>> Scale(factor=2.0)
    Scale(factor=2.0)
    >>> Scale().set_params(factor=3.0).get_params()
    {'factor': 3.0}
    """

    _PARAMS: ClassVar[tuple[str, ...]] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``clone`` expects.

        ``deep`` is accepted for scikit-learn's protocol; nested estimators are
        returned as they are.
        """
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self: _P, **params: Any) -> _P:
        """Set constructor parameters; an unknown name is a ValueError naming it."""
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(
                    f"`{name}` must be one of the parameters {', '.join(self._PARAMS)}, "
                    f"got {name!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__)
        shown = []
        for name in self._PARAMS:
            value = getattr(self, name)
            default = signature.parameters[name].default
            is_default = default is not inspect.Parameter.empty and (
                value is default or (type(value) is type(default) and value == default)
            )
            if not is_default:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
