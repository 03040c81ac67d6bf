"""The field schema shared by instructions and specs: typed, canonical, float-free.

Every field's annotation string is its kind, and `_Record.__post_init__` checks and
normalises values against it (raising `MalformedProgram`):

- `Id` a tensor id, `OptId` an id or None, `Ids` a tuple of ids;
- `Int`, `Bool`, `Str`, `Ints` (tuple of ints), `OptInt`, `Dtype` (one of DTYPES);
- `Dec`: a real hyperparameter kept as the shortest round-trip decimal string of the float
  (`repr(float(x))`: `0.001 -> "0.001"`), because canonical objects carry no floats;
  constructors accept int, float or str. `OptDec` is a `Dec` or None;
- `OptBytes`: raw little-endian tensor data; `Specs`: a tuple of `TensorSpec`;
  `Constraints`: `PythonConstraints`.

`to_obj` / `from_obj` convert records to and from canonical-encodable maps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Optional, Union

from bcai.errors import MalformedProgram

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:/\-\[\]]{1,128}$")


def canonical_dec(value: Any) -> str:
    """The canonical decimal string of a real number: `repr(float(value))`; no NaN."""
    if isinstance(value, bool):
        raise MalformedProgram(f"expected a number, got bool {value!r}")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise MalformedProgram(f"not a decimal number: {value!r}") from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise MalformedProgram(f"expected a number, got {type(value).__name__}")
    if math.isnan(number):
        raise MalformedProgram("NaN is not allowed in a program")
    return repr(number)


def _check_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise MalformedProgram(f"{where}: tensor id must be 1-128 chars of [A-Za-z0-9_.:/-[]], got {value!r}")
    return value


def _coerce(kind: str, value: Any, where: str) -> Any:
    """Check and normalise one field value against its kind; raise MalformedProgram."""
    if kind.startswith("Opt") and value is None:
        return None
    base = kind[3:] if kind.startswith("Opt") else kind
    if base == "Id":
        return _check_id(value, where)
    if base == "Ids":
        if not isinstance(value, (list, tuple)):
            raise MalformedProgram(f"{where}: expected a list of tensor ids")
        return tuple(_check_id(v, where) for v in value)
    if base == "Int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedProgram(f"{where}: expected an int, got {value!r}")
        return value
    if base == "Ints":
        if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise MalformedProgram(f"{where}: expected a list of ints, got {value!r}")
        return tuple(value)
    if base == "Bool":
        if not isinstance(value, bool):
            raise MalformedProgram(f"{where}: expected a bool, got {value!r}")
        return value
    if base == "Str":
        if not isinstance(value, str):
            raise MalformedProgram(f"{where}: expected a string, got {value!r}")
        return value
    if base == "Dec":
        return canonical_dec(value)
    if base == "Bytes":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise MalformedProgram(f"{where}: expected bytes")
        return bytes(value)
    if base == "Dtype":
        if value not in DTYPES:
            raise MalformedProgram(f"{where}: unknown dtype {value!r} (known: {', '.join(DTYPES)})")
        return value
    if base == "Specs":
        if not isinstance(value, (list, tuple)):
            raise MalformedProgram(f"{where}: expected a list of tensor specs")
        return tuple(v if isinstance(v, TensorSpec) else TensorSpec.from_obj(v) for v in value)
    if base == "Constraints":
        return value if isinstance(value, PythonConstraints) else PythonConstraints.from_obj(value)
    raise AssertionError(f"unknown field kind {kind}")


class _Record:
    """Shared machinery: field checking on construction, and to/from canonical objects."""

    KIND: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            where = f"{self.KIND or type(self).__name__}.{f.name}"
            object.__setattr__(self, f.name, _coerce(str(f.type), getattr(self, f.name), where))

    def to_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [v.to_obj() if isinstance(v, _Record) else v for v in value]
            elif isinstance(value, _Record):
                value = value.to_obj()
            out[f.name] = value
        return out

    @classmethod
    def from_obj(cls, obj: Any) -> Any:
        name = cls.KIND or cls.__name__
        if not isinstance(obj, dict):
            raise MalformedProgram(f"{name}: expected a map, got {type(obj).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        extra = sorted(set(obj) - known - {"op_kind"})
        if extra:
            raise MalformedProgram(f"{name}: unknown field(s) {', '.join(map(str, extra))}")
        kwargs = {k: v for k, v in obj.items() if k in known}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise MalformedProgram(f"{name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class TensorSpec(_Record):
    """A named tensor's declared shape (-1 marks a dimension given at run time) and dtype."""

    name: Id
    shape: Ints
    dtype: Dtype = "float32"

    def __post_init__(self) -> None:
        _Record.__post_init__(self)
        if any(d < -1 for d in self.shape):
            raise MalformedProgram(f"TensorSpec {self.name}: dimensions must be >= 0 or -1 (dynamic)")


@dataclass(frozen=True, slots=True)
class PythonConstraints(_Record):
    """Limits for a `PythonExecute` (SPEC C: the Python bridge constraints)."""

    max_memory_mb: Int = 256
    max_execution_time_ms: Int = 10_000
    allowed_imports: tuple[str, ...] = ("math", "numpy")
    max_file_operations: Int = 0
    network_access: Bool = False

    def __post_init__(self) -> None:
        imports = self.allowed_imports
        if not isinstance(imports, (list, tuple)) or not all(isinstance(i, str) for i in imports):
            raise MalformedProgram("PythonConstraints.allowed_imports: expected a list of module names")
        object.__setattr__(self, "allowed_imports", tuple(imports))
        for f in fields(self):
            if f.name != "allowed_imports":
                object.__setattr__(self, f.name, _coerce(str(f.type), getattr(self, f.name), f"PythonConstraints.{f.name}"))


# Annotation aliases: the strings above are the schema; these keep type checkers informed.
Id = str
OptId = Optional[str]
Ids = tuple[str, ...]
Int = int
OptInt = Optional[int]
Ints = tuple[int, ...]
Bool = bool
Str = str
Dec = Union[str, float]  # stored as str; constructors accept numbers
OptDec = Optional[Union[str, float]]
OptBytes = Optional[bytes]
Dtype = str
Specs = tuple[TensorSpec, ...]
Constraints = PythonConstraints
