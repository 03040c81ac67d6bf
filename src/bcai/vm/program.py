"""Programs: state init, named entries, declared limits; canonical encoding and content id.

A `Program` has

- `init`: instructions run once when the program is loaded. Every tensor they create is
  *state* that lives across entry runs: model parameters, buffers (batch-norm running
  statistics), optimizer moments and step counters;
- `entries`: named instruction lists run on demand with feeds, e.g. `forward`
  (inference), `train_step` (forward, loss, `Backward`, optimizer step: one batch) and
  `evaluate`. Tensors an entry creates are temporaries, freed after their last use;
- `parameters` / `buffers`: the state ids that make up the model (what federated
  averaging reads and writes, what a checkpoint stores); the rest of the state is
  optimizer state;
- `limits`: memory and gas per entry run, declared up front and enforced;
- `requirements`: the backends the program accepts, in order of preference;
- `training`: the training config from BML (epochs, batch size, dataset CID, entry and
  feed names) for the runner that drives `train_step` batch by batch;
- `seed`: seeds initialisation and the dropout generator.

The encoding is deterministic CBOR (`bcai.encoding`), and the content id is the CIDv1
(dag-cbor, sha2-256) of those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bcai.crypto import Cid
from bcai.crypto.cid import CODEC_DAG_CBOR
from bcai.encoding import decode, encode
from bcai.errors import EncodingError, MalformedProgram
from bcai.vm.isa import Instruction, TensorSpec, _check_id, instruction_from_obj

PROGRAM_VERSION = 1
BACKEND_NAMES = ("cuda", "mps", "cpu", "wgpu")


@dataclass(frozen=True, slots=True)
class Entry:
    """A named instruction list run with feeds (`inputs`), returning `outputs`."""

    name: str
    inputs: tuple[TensorSpec, ...]
    body: tuple[Instruction, ...]
    outputs: tuple[str, ...]

    def to_obj(self) -> dict[str, Any]:
        return {"name": self.name, "inputs": [s.to_obj() for s in self.inputs],
                "body": [i.to_obj() for i in self.body], "outputs": list(self.outputs)}

    @classmethod
    def from_obj(cls, obj: Any) -> Entry:
        _expect_keys(obj, "Entry", {"name", "inputs", "body", "outputs"})
        if not isinstance(obj["name"], str) or not obj["name"]:
            raise MalformedProgram("Entry.name must be a non-empty string")
        for key in ("inputs", "body", "outputs"):
            if not isinstance(obj[key], list):
                raise MalformedProgram(f"Entry {obj['name']}: {key} must be a list")
        return cls(obj["name"], tuple(TensorSpec.from_obj(s) for s in obj["inputs"]),
                   tuple(instruction_from_obj(i) for i in obj["body"]),
                   tuple(_check_id(o, f"Entry {obj['name']}.outputs") for o in obj["outputs"]))


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits per entry run: peak bytes of live tensors and gas."""

    max_memory_bytes: int = 1 << 30
    max_gas: int = 10**15

    def to_obj(self) -> dict[str, Any]:
        return {"max_memory_bytes": self.max_memory_bytes, "max_gas": self.max_gas}

    @classmethod
    def from_obj(cls, obj: Any) -> Limits:
        _expect_keys(obj, "Limits", {"max_memory_bytes", "max_gas"})
        for key in ("max_memory_bytes", "max_gas"):
            if isinstance(obj[key], bool) or not isinstance(obj[key], int) or obj[key] <= 0:
                raise MalformedProgram(f"Limits.{key} must be a positive int")
        return cls(obj["max_memory_bytes"], obj["max_gas"])


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """How a runner drives the program: run `train_entry` on batches of `batch_size` for
    `epochs` epochs, feeding `feature_input` and `label_input`; `eval_entry` returns
    `loss` and `correct`. `dataset` is the dataset's CID string (or None)."""

    epochs: int
    batch_size: int
    dataset: str | None = None
    train_entry: str = "train_step"
    eval_entry: str = "evaluate"
    feature_input: str = "x"
    label_input: str = "y"

    def to_obj(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "dataset": self.dataset,
                "train_entry": self.train_entry, "eval_entry": self.eval_entry,
                "feature_input": self.feature_input, "label_input": self.label_input}

    @classmethod
    def from_obj(cls, obj: Any) -> TrainingPlan:
        _expect_keys(obj, "TrainingPlan", {"epochs", "batch_size", "dataset", "train_entry", "eval_entry",
                                           "feature_input", "label_input"})
        try:
            plan = cls(**obj)
        except TypeError as exc:
            raise MalformedProgram(f"TrainingPlan: {exc}") from None
        if not isinstance(plan.epochs, int) or not isinstance(plan.batch_size, int) or plan.batch_size <= 0:
            raise MalformedProgram("TrainingPlan: epochs and batch_size must be ints (batch_size > 0)")
        return plan


@dataclass(frozen=True, slots=True)
class Program:
    """A complete VM program (see the module docstring)."""

    init: tuple[Instruction, ...]
    entries: tuple[Entry, ...]
    parameters: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    requirements: tuple[str, ...] = ("cuda", "mps", "cpu")
    seed: int = 0
    training: TrainingPlan | None = None
    version: int = PROGRAM_VERSION

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    @property
    def entry_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def to_obj(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "init": [i.to_obj() for i in self.init],
            "entries": [e.to_obj() for e in self.entries],
            "parameters": list(self.parameters),
            "buffers": list(self.buffers),
            "limits": self.limits.to_obj(),
            "requirements": list(self.requirements),
            "seed": self.seed,
            "training": None if self.training is None else self.training.to_obj(),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Program:
        _expect_keys(obj, "Program", {"version", "init", "entries", "parameters", "buffers", "limits",
                                      "requirements", "seed", "training"})
        if obj["version"] != PROGRAM_VERSION:
            raise MalformedProgram(f"unsupported program version {obj['version']!r} (this VM runs {PROGRAM_VERSION})")
        for key in ("init", "entries", "parameters", "buffers", "requirements"):
            if not isinstance(obj[key], list):
                raise MalformedProgram(f"Program.{key} must be a list")
        if isinstance(obj["seed"], bool) or not isinstance(obj["seed"], int) or not 0 <= obj["seed"] < 2**63:
            raise MalformedProgram("Program.seed must be an int in [0, 2**63)")
        bad = [r for r in obj["requirements"] if r not in BACKEND_NAMES]
        if bad or not obj["requirements"]:
            raise MalformedProgram(f"Program.requirements must name backends among {BACKEND_NAMES}, got {obj['requirements']!r}")
        return cls(
            init=tuple(instruction_from_obj(i) for i in obj["init"]),
            entries=tuple(Entry.from_obj(e) for e in obj["entries"]),
            parameters=tuple(_check_id(p, "Program.parameters") for p in obj["parameters"]),
            buffers=tuple(_check_id(p, "Program.buffers") for p in obj["buffers"]),
            limits=Limits.from_obj(obj["limits"]),
            requirements=tuple(obj["requirements"]),
            seed=obj["seed"],
            training=None if obj["training"] is None else TrainingPlan.from_obj(obj["training"]),
        )


def _expect_keys(obj: Any, name: str, keys: set[str]) -> None:
    if not isinstance(obj, dict):
        raise MalformedProgram(f"{name}: expected a map, got {type(obj).__name__}")
    missing, extra = keys - set(obj), set(obj) - keys
    if missing or extra:
        raise MalformedProgram(f"{name}: missing {sorted(missing)} / unknown {sorted(map(str, extra))} fields")


def encode_program(program: Program) -> bytes:
    """The canonical bytes of `program`."""
    return encode(program.to_obj())


def decode_program(data: bytes) -> Program:
    """Parse canonical program bytes; raises `MalformedProgram` for anything else."""
    try:
        obj = decode(data)
    except EncodingError as exc:
        raise MalformedProgram(f"program bytes are not canonical CBOR: {exc}") from None
    return Program.from_obj(obj)


def compute_program_cid(program: Program) -> Cid:
    """The content id (CIDv1, dag-cbor, sha2-256) of the program's canonical bytes."""
    return Cid.of(encode_program(program), CODEC_DAG_CBOR)
