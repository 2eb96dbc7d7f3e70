"""``frozen``: a frozen, slotted dataclass whose constructor is several times faster.

Packets and events are immutable values, and an engine makes several per message. The
``__init__`` that ``dataclasses`` writes for a frozen class sets each field through
``object.__setattr__`` looked up anew per field; this one calls each slot's own descriptor,
bound once. Everything else (eq, hash, repr, ``dataclasses.replace``, the refusal to
assign) is the standard dataclass machinery.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields


def frozen(cls=None, /, **options):
    """Use like ``@dataclass``: ``@frozen`` or ``@frozen(repr=False)``."""

    def wrap(klass):
        klass = dataclass(klass, frozen=True, slots=True, **options)
        _install_fast_init(klass)
        return klass

    return wrap if cls is None else wrap(cls)


def _install_fast_init(cls) -> None:
    params, lines = [], []
    namespace: dict[str, object] = {}
    for f in fields(cls):
        if not f.init:
            continue
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        else:
            params.append(f.name)
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        lines.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(lines) or "    pass")
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
