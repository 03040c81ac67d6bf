"""An ONNX backend (`onnx.backend.base.Backend`) for the VM: `from_onnx`, then the program's
`forward` entry on the CPU backend.

It lets the ONNX standard's own backend test suite run against bcai:

    import onnx.backend.test
    from bcai.vm.frontends.onnx_backend import BcaiBackend

    backend_test = onnx.backend.test.BackendTest(BcaiBackend, __name__)
    globals().update(backend_test.enable_report().test_cases)   # then run pytest on the file

A model the importer cannot express raises `UnsupportedOperators` from `prepare` (the
suite reports it as an error naming the operator), a malformed one `InvalidModel`.

Graph inputs that an operator needs as constants (Reshape's shape, Squeeze's axes, Pad's
pads, LSTM weights: `ConstantInputNeeded`), or that such a constant is computed from, are
bound when `run` gets their values: the model is compiled for those values
(`from_onnx(bind=...)`) and cached per distinct value, the way a static-graph runtime
specialises on shape inputs. Every other input stays a feed of the compiled program.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
import torch
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from bcai.errors import ConstantInputNeeded, InvalidFeed, InvalidModel
from bcai.vm.frontends.onnx import from_onnx, inline_function_ops
from bcai.vm.interpreter import VM, Session
from bcai.vm.program import Program
from bcai.vm.kernels import TORCH_DTYPES
from bcai.vm.tensors import as_tensor


def _to_torch(value: Any) -> torch.Tensor:
    """A feed as a torch tensor; bfloat16 arrays (ml_dtypes, which numpy->torch cannot
    read) go through float32, which holds every bfloat16 value exactly."""
    if isinstance(value, torch.Tensor):
        return value
    arr = np.asarray(value)
    if arr.dtype.name == "bfloat16":
        return as_tensor(arr.astype(np.float32)).to(torch.bfloat16)
    if arr.dtype.kind not in "biuf" or arr.dtype.name not in TORCH_DTYPES:
        raise InvalidFeed(f"feeds of dtype {arr.dtype} are not supported by the VM "
                          f"(supported: {', '.join(TORCH_DTYPES)})")
    return as_tensor(arr)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().to("cpu")
    if t.dtype == torch.bfloat16:
        import ml_dtypes  # an onnx dependency; numpy has no bfloat16 of its own

        return t.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


_MAX_SPECIALISATIONS = 16


def find_constant_sources(graph: onnx.GraphProto, value: str, inputs: Sequence[str]) -> set[str]:
    """The graph inputs whose values `value` is computed from. Shape and Size read only
    their input's shape, so the walk does not go through them (their input stays a feed)."""
    producers = {out: node for node in graph.node for out in node.output if out}
    wanted, found, seen = [value], set(), set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
            continue
        node = producers.get(name)
        if node is not None and node.op_type not in ("Shape", "Size"):
            wanted.extend(i for i in node.input if i)
    return found


class BcaiBackendRep(BackendRep):
    """A compiled ONNX model loaded in a VM session; `run` feeds the graph's inputs (a
    list in graph order, a dict by name, or one array) and returns its outputs as numpy
    arrays (a named tuple, by ONNX output name). With `bound` inputs, the session is made
    per distinct value of those inputs (see the module doc)."""

    def __init__(self, model: bytes, input_names: Sequence[str], output_names: Sequence[str],
                 session: Session | None, bound: Sequence[str] = (), graph: onnx.GraphProto | None = None) -> None:
        self.model = model
        self.graph = graph
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.session = session
        self.bound = tuple(bound)
        self._sessions: dict[tuple[Any, ...], tuple[Session, tuple[str, ...]]] = {}

    def _session_for(self, values: dict[str, np.ndarray]) -> tuple[Session, tuple[str, ...]]:
        """The session compiled for these values of the bound inputs, and which inputs it binds."""
        if self.session is not None:
            return self.session, ()
        bound = list(self.bound)
        while True:
            key = tuple((n, values[n].dtype.str, values[n].shape, values[n].tobytes()) for n in bound)
            if key in self._sessions:
                return self._sessions[key]
            try:
                program = from_onnx(self.model, bind={n: values[n] for n in bound})
            except ConstantInputNeeded as exc:
                assert self.graph is not None
                sources = find_constant_sources(self.graph, exc.value, self.input_names) - set(bound)
                if not sources:
                    raise
                bound.extend(sorted(sources))
                continue
            if len(self._sessions) >= _MAX_SPECIALISATIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[key] = (VM("cpu").load(program), tuple(bound))
            return self._sessions[key]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise InvalidFeed(f"missing inputs {missing} (the graph takes {list(self.input_names)})")
            values = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, (list, tuple)):
            values = list(inputs)
        else:
            values = [inputs]
        if len(values) != len(self.input_names):
            raise InvalidFeed(f"the graph takes {len(self.input_names)} inputs {list(self.input_names)}, "
                              f"got {len(values)}")
        named = dict(zip(self.input_names, values))
        if self.session is None:
            named = {n: np.asarray(v) for n, v in named.items()}
        session, bound = self._session_for(named)  # type: ignore[arg-type]
        entry = session.program.entry("forward")
        fed = [v for n, v in named.items() if n not in bound]
        feeds = {spec.name: _to_torch(v) for spec, v in zip(entry.inputs, fed)}
        outputs, _ = session.run("forward", feeds)
        arrays = [_to_numpy(outputs[o]) for o in entry.outputs]
        return namedtupledict("Outputs", self.output_names)(*arrays)


class BcaiBackend(Backend):
    """`onnx.backend.base.Backend` over `from_onnx` and the VM's CPU backend."""

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except (AttributeError, ValueError):  # a device name onnx does not know
            return False

    @classmethod
    def prepare(cls, model: onnx.ModelProto | bytes, device: str = "CPU", **kwargs: Any) -> BcaiBackendRep:
        if not cls.supports_device(device):
            raise ValueError(f"the bcai ONNX backend runs on CPU only, not {device!r}")
        data = model if isinstance(model, bytes) else model.SerializeToString()
        program: Program | None = None
        try:
            program = from_onnx(data)  # first: it turns unreadable bytes into InvalidModel
        except ConstantInputNeeded as exc:
            needed = exc
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load_model_from_string(data)
        initializers = {i.name for i in proto.graph.initializer}
        input_names = [i.name for i in proto.graph.input if i.name not in initializers]
        output_names = [o.name for o in proto.graph.output]
        if program is not None:
            return BcaiBackendRep(data, input_names, output_names, VM("cpu").load(program))
        graph = inline_function_ops(proto).graph  # the constant needed may be inside a function body
        sources = find_constant_sources(graph, needed.value, input_names)
        if not sources:
            raise needed
        return BcaiBackendRep(data, input_names, output_names, None, sorted(sources), graph)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        """Run one node: wrapped in a one-node model whose input types come from `inputs`
        (a list in node-input order or a dict by name) and whose opset is
        `kwargs["opset_version"]` (default: this onnx's latest)."""
        names = [n for n in node.input if n]
        values = [inputs[n] for n in names] if isinstance(inputs, dict) else list(inputs)
        if len(values) != len(names):
            raise InvalidFeed(f"node {node.op_type} takes {len(names)} inputs, got {len(values)}")
        helper = onnx.helper
        graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype),
                                                      np.asarray(v).shape) for n, v in zip(names, values)]
        out_names = [o for o in node.output if o]
        opsets = [helper.make_opsetid("", kwargs.get("opset_version", onnx.defs.onnx_opset_version()))]
        if outputs_info is not None:
            graph_outputs = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
                             for o, (dt, shape) in zip(out_names, outputs_info)]
        else:  # the output types ONNX shape inference gives the node
            probe = helper.make_model(helper.make_graph([node], "probe", graph_inputs, []), opset_imports=opsets)
            try:
                inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(probe).graph.value_info}
            except Exception as exc:  # onnx raises several types for a bad node
                raise InvalidModel(f"node {node.op_type}: {exc}") from None
            missing = [o for o in out_names if o not in inferred]
            if missing:
                raise InvalidModel(f"node {node.op_type}: ONNX shape inference gives no type for {missing}; "
                                   "pass outputs_info")
            graph_outputs = [inferred[o] for o in out_names]
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        return cls.run_model(onnx.helper.make_model(graph, opset_imports=opsets), values, device)


prepare = BcaiBackend.prepare
run_model = BcaiBackend.run_model
run_node = BcaiBackend.run_node
supports_device = BcaiBackend.supports_device
