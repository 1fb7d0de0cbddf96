"""The registry of CAM methods: name -> :class:`Method`, what each computes, needs and costs.

A method is one function ``weighting(A, G, ctx) -> map`` decorated with :func:`register`; the
name tuples and the table of :mod:`lib.cam`'s docstring are derived from the registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Method", "METHODS", "register", "names_where", "methods_table"]


@dataclass(frozen=True, repr=False, eq=False)
class Method:
    """One registered CAM method (an entry of :data:`METHODS`); ``help()`` on it says what it
    computes, what it needs, its cost and its reference.

    ``weighting(A, G, ctx)`` returns the raw map: (N, h, w) for a layer method, (N, C, H, W) for
    an input-resolution one. A is the layer's activations (N, K, h, w) and G = dY/dA (None
    unless ``gradients``); both are None for methods without a layer. ``ctx`` is a
    :class:`Context`. ``options`` maps each option of the method to its allowed values, the
    first being the default.
    """

    name: str
    weighting: Callable
    formula: str
    cost: str
    reference: str
    layer: bool = True
    gradients: bool = False
    extra_forwards: bool = False
    input_resolution: bool = False
    captum: bool = False
    hooks: bool | None = None
    options: Mapping[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        if self.hooks is None:  # a layer's activations are read by a forward hook
            object.__setattr__(self, "hooks", self.layer)
        doc = inspect.cleandoc(self.weighting.__doc__ or "")
        opts = "; ".join(f"{k} in {v} (default {v[0]!r})" for k, v in self.options.items())
        object.__setattr__(
            self,
            "__doc__",
            (
                f"{self.name}: {doc}\n\n"
                f"map:       {self.formula}\n"
                f"needs:     {', '.join(self.needs)}\n"
                f"cost:      {self.cost}\n"
                f"reference: {self.reference}\n"
                f"options:   {opts or 'none'}  (compute(..., options={{{self.name!r}: {{...}}}}))"
            ),
        )

    @property
    def needs(self) -> tuple[str, ...]:
        """What the method needs, in words."""
        out = []
        if self.layer:
            out.append("a target layer's activations A")
        if self.gradients:
            out.append(
                "gradients G = dY/dA"
                if self.layer and not self.input_resolution
                else "gradients (autograd)"
            )
        if self.extra_forwards:
            out.append("extra forward passes")
        if self.input_resolution:
            out.append("input resolution (returns (N, C, H, W))")
        if self.captum:
            out.append("Captum")
        return tuple(out) or ("the model's output only",)

    def __call__(self, a, g, ctx):
        return self.weighting(a, g, ctx)

    def __repr__(self):
        return f"<CAM method {self.name!r}>"


#: the registry: method name -> :class:`Method`, in the order of the module's table
METHODS: dict[str, Method] = {}


def register(name: str, *, formula: str, cost: str, reference: str, **needs):
    """Decorator: register ``weighting(A, G, ctx)`` as the method ``name``.

    ``formula`` (one line, for the table), ``cost`` (e.g. ``"1 forward + 1 backward"``),
    ``reference`` (paper and equation); ``needs``: the :class:`Method` flags ``layer``,
    ``gradients``, ``extra_forwards``, ``input_resolution``, ``captum``, ``hooks`` and
    ``options``. The function's docstring says what the method computes.
    """

    def deco(fn):
        if name in METHODS:
            raise ValueError(f"a CAM method named {name!r} is already registered")
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"the weighting of {name!r} needs a docstring: what it computes")
        METHODS[name] = Method(name, fn, formula, cost, reference, **needs)
        return fn

    return deco


def names_where(**flags) -> tuple[str, ...]:
    """The registered methods whose flags have the given values, e.g.
    ``names_where(captum=True)``."""
    return tuple(n for n, m in METHODS.items() if all(getattr(m, k) == v for k, v in flags.items()))


def methods_table() -> str:
    """The registry as a reStructuredText table: method, map, cost, reference."""
    rows = [("method", "map (before any post-processing)", "cost", "reference")]
    rows += [(n, m.formula, m.cost, m.reference) for n, m in METHODS.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    rule = "  ".join("=" * w for w in widths)
    fmt = [("  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]
    return "\n".join([rule, fmt[0], rule, *fmt[1:], rule])
