"""``frozen``: a frozen, slotted dataclass whose constructor is several times faster.

Packets and events are immutable values, and an engine makes several per message. What
makes a frozen dataclass slow to build is its ``__setattr__``, which refuses every
assignment: ``__init__`` must go around it, one slow call per field. Here each class gets
a private unfrozen twin, a subclass that adds no slots and assigns normally. An instance
is filled in as the twin (plain slot stores, which Python runs fastest) and then made the
frozen class by assigning ``__class__``, which Python allows between classes of the same
layout. The result is exactly the object the dataclass ``__init__`` would make. Everything
else (eq, hash, repr, ``dataclasses.replace``, the refusal to assign) is the standard
dataclass machinery.

``cls._new(...)`` takes the constructor's arguments and also skips the call of the class
(faster still): the engines' hot paths use it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

_set_class = object.__dict__["__class__"].__set__


def frozen(cls=None, /, **options):
    """Use like ``@dataclass``: ``@frozen`` or ``@frozen(repr=False)``."""

    def wrap(klass):
        klass = dataclass(klass, frozen=True, slots=True, **options)
        _install_fast_init(klass)
        return klass

    return wrap if cls is None else wrap(cls)


def _install_fast_init(cls) -> None:
    params, names = [], []
    namespace: dict[str, object] = {"_cls": cls, "_set_class": _set_class}
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
        names.append(f.name)
    if len(names) != len(cls.__slots__):
        raise TypeError(f"{cls.__name__}: every field must be set by __init__")
    # A subclass adding no slots: layouts match, so __class__ may be switched either way.
    namespace["_Unfrozen"] = type(f"_Unfrozen{cls.__name__}", (cls,), {
        "__slots__": (), "__init__": object.__init__, "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__})
    stores = [f"    self.{name} = {name}" for name in names]
    source = "\n".join([
        f"def __init__(self, {', '.join(params)}):",
        "    if self.__class__ is _cls:",
        "        _set_class(self, _Unfrozen)",
        *("    " + line for line in stores),
        "        self.__class__ = _cls",
        "    else:  # a subclass, perhaps of another layout: one descriptor call per field",
        *(f"        _set_{name}(self, {name})" for name in names),
        "        pass",
        f"def _new({', '.join(params)}):",
        "    self = _Unfrozen()",
        *stores,
        "    self.__class__ = _cls",
        "    return self",
    ])
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    new = namespace["_new"]
    new.__qualname__ = f"{cls.__qualname__}._new"
    cls._new = staticmethod(new)
