"""The job spec: the document a `PostJob` transaction names by CID.

It says what to train (a BML document, see docs/bml.md), on which data (the encrypted
train and test artifacts by CID), how (paradigm, rounds, local epochs, aggregation rule;
for `data_parallel`, rounds x local_epochs epochs over the whole set and a checkpoint
every `checkpoint_every` global steps) and what evaluators accept (a minimum test
accuracy). Encoded as canonical CBOR; its CID uses the dag-cbor codec. No floats:
accuracies are basis points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from bcai.crypto import CODEC_DAG_CBOR, Cid
from bcai.encoding import decode, encode
from bcai.errors import EncodingError, InvalidCid, InvalidJobDocument

PARADIGMS = ("federated", "data_parallel")
MAX_CHECKPOINT_EVERY = 1_000_000
AGGREGATIONS = ("fedavg", "median", "trimmed_mean", "krum")
MAX_SPEC_BYTES = 256 * 1024


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

    def __post_init__(self) -> None:
        for name in ("train_cid", "test_cid"):
            try:
                Cid.parse(getattr(self, name))
            except InvalidCid as exc:
                raise InvalidJobDocument(f"{name}: {exc}") from None
        if self.paradigm not in PARADIGMS:
            raise InvalidJobDocument(f"paradigm must be one of {PARADIGMS} (competitive jobs are not implemented "
                                     f"yet), got {self.paradigm!r}")
        if self.aggregation not in AGGREGATIONS:
            raise InvalidJobDocument(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if not 1 <= self.rounds <= 1000 or not 1 <= self.local_epochs <= 1000 or self.train_samples < 1:
            raise InvalidJobDocument("rounds and local_epochs must be in 1..1000, train_samples positive")
        if not 0 <= self.checkpoint_every <= MAX_CHECKPOINT_EVERY:
            raise InvalidJobDocument(f"checkpoint_every must be in 0..{MAX_CHECKPOINT_EVERY}")
        if not 0 <= self.target_accuracy_bps <= 10_000:
            raise InvalidJobDocument("target_accuracy_bps must be in 0..10000")

    def to_bytes(self) -> bytes:
        return encode(asdict(self))

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
        if not isinstance(obj, dict) or set(obj) != set(names):
            raise InvalidJobDocument(f"job spec needs exactly the fields {sorted(names)}")
        for name, value in obj.items():
            expected = int if names[name] in ("int", int) else str
            if type(value) is not expected:
                raise InvalidJobDocument(f"job spec field {name} must be {expected.__name__}")
        return cls(**obj)
