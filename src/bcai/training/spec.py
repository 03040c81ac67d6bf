"""The job spec: the document a `PostJob` transaction names by CID.

It says what to train (a BML document, see docs/bml.md), on which data (the encrypted
train and test artifacts by CID), how (paradigm, rounds, local epochs, aggregation rule;
for `data_parallel`, rounds x local_epochs epochs over the whole set and a checkpoint
every `checkpoint_every` global steps) and what evaluators accept (a minimum test
accuracy). Encoded as canonical CBOR; its CID uses the dag-cbor codec. No floats:
accuracies are basis points.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bcai.crypto import CODEC_DAG_CBOR, Cid
from bcai.encoding import decode, encode
from bcai.errors import EncodingError, InvalidCid, InvalidJobDocument

PARADIGMS = ("federated", "competitive", "data_parallel")
# competitive jobs: the BML training keys a search may vary, and their value types
SEARCH_KEYS = {"lr": float, "momentum": float, "weight_decay": float, "beta1": float, "beta2": float,
               "batch_size": int, "seed": int}
MAX_SEARCH_POINTS = 1024
MAX_CHECKPOINT_EVERY = 1_000_000
AGGREGATIONS = ("fedavg", "median", "trimmed_mean", "krum")
MAX_SPEC_BYTES = 256 * 1024
# Fields added after the first specs: left out of the encoding at their default, so a spec
# that does not use them keeps the bytes (and CID) it had before they existed.
OPTIONAL_FIELDS: dict[str, Any] = {"checkpoint_every": 0, "search": {}}


@dataclass(frozen=True)
class JobSpec:
    name: str
    bml: str
    train_cid: str
    test_cid: str
    train_samples: int
    rounds: int = 3
    local_epochs: int = 4
    aggregation: str = "fedavg"
    paradigm: str = "federated"
    target_accuracy_bps: int = 9700
    checkpoint_every: int = 0  # data_parallel: global steps between checkpoints (0: none)
    # competitive jobs: BML training key -> candidate values (decimal text, no floats in
    # CBOR); worker k of the job takes grid point k (`bcai.training.competitive`). Left out
    # of the encoding when empty, so specs from before it keep their CID.
    search: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train_cid", "test_cid"):
            try:
                Cid.parse(getattr(self, name))
            except InvalidCid as exc:
                raise InvalidJobDocument(f"{name}: {exc}") from None
        if self.paradigm not in PARADIGMS:
            raise InvalidJobDocument(f"paradigm must be one of {PARADIGMS}, got {self.paradigm!r}")
        if self.aggregation not in AGGREGATIONS:
            raise InvalidJobDocument(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if not 1 <= self.rounds <= 1000 or not 1 <= self.local_epochs <= 1000 or self.train_samples < 1:
            raise InvalidJobDocument("rounds and local_epochs must be in 1..1000, train_samples positive")
        if not 0 <= self.checkpoint_every <= MAX_CHECKPOINT_EVERY:
            raise InvalidJobDocument(f"checkpoint_every must be in 0..{MAX_CHECKPOINT_EVERY}")
        if not 0 <= self.target_accuracy_bps <= 10_000:
            raise InvalidJobDocument("target_accuracy_bps must be in 0..10000")
        check_search(self.search)
        if self.checkpoint_every and self.paradigm != "data_parallel":
            raise InvalidJobDocument("checkpoint_every is for data_parallel jobs only (federated jobs checkpoint "
                                     "every round)")
        if self.search and self.paradigm != "competitive":
            raise InvalidJobDocument("search (a hyperparameter grid) is for competitive jobs only")

    def to_bytes(self) -> bytes:
        value = asdict(self)
        for name, default in OPTIONAL_FIELDS.items():
            if value[name] == default:
                del value[name]
        return encode(value)

    @property
    def cid(self) -> Cid:
        return Cid.of(self.to_bytes(), CODEC_DAG_CBOR)

    @classmethod
    def from_bytes(cls, data: bytes) -> JobSpec:
        if len(data) > MAX_SPEC_BYTES:
            raise InvalidJobDocument(f"job spec over {MAX_SPEC_BYTES} bytes")
        try:
            obj = decode(data)
        except EncodingError as exc:
            raise InvalidJobDocument(f"job spec is not canonical CBOR: {exc}") from None
        names = {f.name: f.type for f in fields(cls)}
        required = set(names) - set(OPTIONAL_FIELDS)
        if not isinstance(obj, dict) or not required <= set(obj) <= set(names):
            raise InvalidJobDocument(f"job spec needs the fields {sorted(required)}, optionally "
                                     f"{sorted(OPTIONAL_FIELDS)}")
        for name, value in obj.items():
            if name in OPTIONAL_FIELDS and value == OPTIONAL_FIELDS[name]:
                raise InvalidJobDocument(f"job spec: {name} at its default is left out (one encoding per spec)")
            if name == "search":
                continue  # checked in __post_init__
            expected = int if names[name] in ("int", int) else str
            if type(value) is not expected:
                raise InvalidJobDocument(f"job spec field {name} must be {expected.__name__}")
        return cls(**obj)


def check_search(search: Any) -> None:
    """Raise `InvalidJobDocument` unless `search` is a valid hyperparameter grid."""
    if not isinstance(search, dict):
        raise InvalidJobDocument("search must map BML training keys to lists of values")
    points = 1
    for key, values in search.items():
        if key not in SEARCH_KEYS:
            raise InvalidJobDocument(f"search: {key!r} is not one of {sorted(SEARCH_KEYS)}")
        if not isinstance(values, list) or not values or len(values) > MAX_SEARCH_POINTS:
            raise InvalidJobDocument(f"search.{key} must be a list of 1..{MAX_SEARCH_POINTS} values")
        for value in values:
            parse_search_value(key, value)
        if len(set(values)) != len(values):
            raise InvalidJobDocument(f"search.{key} repeats a value")
        points *= len(values)
    if points > MAX_SEARCH_POINTS:
        raise InvalidJobDocument(f"search has {points} grid points, at most {MAX_SEARCH_POINTS}")


def parse_search_value(key: str, value: Any) -> float | int:
    """A search value (decimal text) as the number the BML takes; `InvalidJobDocument` if bad."""
    kind = SEARCH_KEYS[key]
    try:
        if type(value) is not str or len(value) > 32:
            raise ValueError
        number = kind(value)
    except ValueError:
        raise InvalidJobDocument(f"search.{key}: {value!r} is not {kind.__name__} text") from None
    if not math.isfinite(number) or number < 0:
        raise InvalidJobDocument(f"search.{key}: {value!r} must be finite and non-negative")
    return number
