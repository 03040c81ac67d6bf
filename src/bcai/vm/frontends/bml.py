"""BML: the YAML job language -> a training program (see docs/bml.md).

    bml: 1
    model: {template: mlp, input_shape: [64], hidden: [128], num_classes: 10}
    training: {optimizer: adam, lr: 0.001, epochs: 10, batch_size: 64,
               loss: cross_entropy, seed: 7, dataset: bafk...}
    limits: {max_memory_mb: 512, max_gas: 1000000000000}
    devices: [cuda, cpu]

Every key is checked; an unknown key, a wrong type or a missing field is an `InvalidBml`
naming its path (`model.hidden[1]`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bcai.crypto import Cid
from bcai.encoding.documents import load_yaml
from bcai.errors import BcaiError, InvalidBml, InvalidCid
from bcai.vm import isa
from bcai.vm.frontends.builder import OptimizerConfig, build_training_program
from bcai.vm.frontends.templates import ACTIVATIONS, CNN, MLP, LSTMClassifier, Transformer
from bcai.vm.program import BACKEND_NAMES, Limits, Program

MAX_BML_BYTES = 1 << 20

_INT, _INTS, _NUM, _BOOL, _STR = "int", "ints", "number", "bool", "str"

# template -> {key: (kind, required, default)}
_MODEL_KEYS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "mlp": {"input_shape": (_INTS, True, None), "hidden": (_INTS, False, ()), "num_classes": (_INT, True, None),
            "activation": (_STR, False, "relu"), "dropout": (_NUM, False, 0.0), "batch_norm": (_BOOL, False, False)},
    "cnn": {"input_shape": (_INTS, True, None), "channels": (_INTS, True, None), "hidden": (_INTS, False, ()),
            "num_classes": (_INT, True, None), "kernel_size": (_INT, False, 3), "pool": (_INT, False, 2),
            "activation": (_STR, False, "relu"), "dropout": (_NUM, False, 0.0), "batch_norm": (_BOOL, False, False)},
    "lstm": {"input_shape": (_INTS, True, None), "hidden_size": (_INT, True, None),
             "num_classes": (_INT, True, None), "num_layers": (_INT, False, 1), "bidirectional": (_BOOL, False, False)},
    "transformer": {"input_shape": (_INTS, True, None), "embed_dim": (_INT, True, None),
                    "num_heads": (_INT, True, None), "num_layers": (_INT, False, 1), "ff_dim": (_INT, True, None),
                    "num_classes": (_INT, True, None), "vocab_size": (_INT, False, None),
                    "dropout": (_NUM, False, 0.0), "activation": (_STR, False, "relu"), "causal": (_BOOL, False, False)},
}
_TRAINING_KEYS: dict[str, tuple[str, bool, Any]] = {
    "optimizer": (_STR, False, "adam"), "lr": (_NUM, False, 0.001), "momentum": (_NUM, False, 0.0),
    "weight_decay": (_NUM, False, 0.0), "beta1": (_NUM, False, 0.9), "beta2": (_NUM, False, 0.999),
    "eps": (_NUM, False, 1e-8), "nesterov": (_BOOL, False, False), "epochs": (_INT, True, None),
    "batch_size": (_INT, True, None), "loss": (_STR, False, "cross_entropy"), "seed": (_INT, False, 0),
    "dataset": (_STR, False, None),
}
_LIMIT_KEYS: dict[str, tuple[str, bool, Any]] = {
    "max_memory_mb": (_INT, False, 1024), "max_gas": (_INT, False, 10**15),
}


def _check(kind: str, value: Any, path: str) -> Any:
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidBml(f"{path}: expected a non-negative integer, got {value!r}")
    elif kind == _INTS:
        if not isinstance(value, list) or not value and not path.endswith("hidden"):
            raise InvalidBml(f"{path}: expected a non-empty list of positive integers, got {value!r}")
        for k, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise InvalidBml(f"{path}[{k}]: expected a positive integer, got {v!r}")
        return tuple(value)
    elif kind == _NUM:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
            raise InvalidBml(f"{path}: expected a non-negative number, got {value!r}")
    elif kind == _BOOL:
        if not isinstance(value, bool):
            raise InvalidBml(f"{path}: expected true or false, got {value!r}")
    elif kind == _STR:
        if not isinstance(value, str):
            raise InvalidBml(f"{path}: expected a string, got {value!r}")
    return value


def _section(doc: dict[str, Any], name: str, keys: dict[str, tuple[str, bool, Any]], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = doc.get(name, {})
    if not isinstance(raw, dict):
        raise InvalidBml(f"{name}: expected a mapping")
    unknown = sorted(set(raw) - set(keys) - set(skip))
    if unknown:
        raise InvalidBml(f"{name}: unknown key(s) {unknown}; allowed: {sorted(keys)}")
    out = {}
    for key, (kind, required, default) in keys.items():
        if key not in raw:
            if required:
                raise InvalidBml(f"{name}.{key}: required")
            out[key] = default
        else:
            out[key] = _check(kind, raw[key], f"{name}.{key}")
    return out


def parse_bml(text: str | bytes) -> dict[str, Any]:
    """Parse and schema-check a BML document; return its normalised sections."""
    if isinstance(text, bytes):
        if len(text) > MAX_BML_BYTES:
            raise InvalidBml(f"BML document over {MAX_BML_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBml("BML document is not UTF-8") from None
    if len(text) > MAX_BML_BYTES:
        raise InvalidBml(f"BML document over {MAX_BML_BYTES} bytes")
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidBml(f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidBml("a BML document is a mapping with bml, model and training keys")
    unknown = sorted(set(doc) - {"bml", "name", "model", "training", "limits", "devices"})
    if unknown:
        raise InvalidBml(f"unknown top-level key(s) {unknown}; allowed: bml, name, model, training, limits, devices")
    if doc.get("bml") != 1:
        raise InvalidBml(f"bml: this VM reads BML version 1, got {doc.get('bml')!r}")
    if not isinstance(doc.get("model"), dict) or "template" not in doc["model"]:
        raise InvalidBml(f"model.template: required, one of {sorted(_MODEL_KEYS)}")
    template = doc["model"]["template"]
    if template not in _MODEL_KEYS:
        raise InvalidBml(f"model.template: unknown template {template!r}; known: {sorted(_MODEL_KEYS)}")
    model = _section(doc, "model", _MODEL_KEYS[template], skip=("template",))
    training = _section(doc, "training", _TRAINING_KEYS)
    if "training" not in doc:
        raise InvalidBml("training: required")
    limits = _section(doc, "limits", _LIMIT_KEYS)
    devices = doc.get("devices", ["cuda", "mps", "cpu"])
    if not isinstance(devices, list) or not devices or any(d not in BACKEND_NAMES for d in devices):
        raise InvalidBml(f"devices: expected a non-empty list among {list(BACKEND_NAMES)}, got {devices!r}")
    if "activation" in model and model["activation"] not in ACTIVATIONS:
        raise InvalidBml(f"model.activation: unknown {model['activation']!r}; known: {sorted(ACTIVATIONS)}")
    if "dropout" in model and not model["dropout"] < 1:
        raise InvalidBml("model.dropout: must be below 1")
    if training["optimizer"] not in ("adam", "adamw", "sgd"):
        raise InvalidBml(f"training.optimizer: unknown {training['optimizer']!r}; known: adam, adamw, sgd")
    if training["loss"] not in ("cross_entropy", "mse"):
        raise InvalidBml(f"training.loss: unknown {training['loss']!r}; known: cross_entropy, mse")
    for key in ("epochs", "batch_size", "lr"):
        if not training[key] > 0:
            raise InvalidBml(f"training.{key}: must be positive")
    if training["dataset"] is not None:
        try:
            Cid.parse(training["dataset"])
        except InvalidCid as exc:
            raise InvalidBml(f"training.dataset: not a content id: {exc}") from None
    return {"template": template, "model": model, "training": training, "limits": limits, "devices": tuple(devices),
            "name": doc.get("name")}


def _model(template: str, m: dict[str, Any]) -> tuple[Any, isa.TensorSpec]:
    shape = m["input_shape"]
    if template == "mlp":
        return MLP(shape, m["hidden"], m["num_classes"], m["activation"], float(m["dropout"]), m["batch_norm"]), \
            isa.TensorSpec("x", (-1, *shape))
    if template == "cnn":
        if len(shape) != 3:
            raise InvalidBml("model.input_shape: the cnn template takes [channels, height, width]")
        return CNN(shape, m["channels"], m["hidden"], m["num_classes"], m["kernel_size"], m["pool"],
                   m["activation"], float(m["dropout"]), m["batch_norm"]), isa.TensorSpec("x", (-1, *shape))
    if template == "lstm":
        if len(shape) != 2:
            raise InvalidBml("model.input_shape: the lstm template takes [time steps, features]")
        return LSTMClassifier(shape, m["hidden_size"], m["num_classes"], m["num_layers"], m["bidirectional"]), \
            isa.TensorSpec("x", (-1, *shape))
    vocab = m["vocab_size"]
    if (vocab is None and len(shape) != 2) or (vocab is not None and len(shape) != 1):
        raise InvalidBml("model.input_shape: the transformer template takes [tokens] with vocab_size, "
                         "or [tokens, features] without")
    if m["num_heads"] == 0 or m["embed_dim"] % m["num_heads"]:
        raise InvalidBml("model.embed_dim must be a multiple of model.num_heads")
    return Transformer(shape, m["embed_dim"], m["num_heads"], m["num_layers"], m["ff_dim"], m["num_classes"], vocab,
                       float(m["dropout"]), m["activation"], m["causal"]), \
        isa.TensorSpec("x", (-1, *shape), "int64" if vocab is not None else "float32")


def from_bml(source: str | bytes | Path) -> Program:
    """Compile a BML document (YAML text, bytes, or a path) into a training program with
    entries `forward`, `train_step` and `evaluate` (see `build_training_program`)."""
    if isinstance(source, Path):
        path = source
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise InvalidBml(f"cannot read {path}: {exc}") from None
    spec = parse_bml(source)
    model, input_spec = _model(spec["template"], spec["model"])
    t = spec["training"]
    opt = OptimizerConfig(t["optimizer"], t["lr"], t["momentum"], t["weight_decay"], t["beta1"], t["beta2"], t["eps"],
                          t["nesterov"])
    limits = Limits(spec["limits"]["max_memory_mb"] << 20, spec["limits"]["max_gas"])
    if limits.max_memory_bytes <= 0 or limits.max_gas <= 0:
        raise InvalidBml("limits: max_memory_mb and max_gas must be positive")
    try:
        return build_training_program(model, input_spec, num_outputs=spec["model"]["num_classes"], loss=t["loss"],
                                      optimizer=opt, seed=t["seed"], limits=limits, epochs=t["epochs"],
                                      batch_size=t["batch_size"], dataset=t["dataset"], requirements=spec["devices"])
    except BcaiError as exc:
        raise InvalidBml(f"model cannot be built: {exc}") from None
