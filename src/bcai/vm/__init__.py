"""The Enhanced VM: ML programs as data, executed on PyTorch.

- `isa.py`: the instruction set (one frozen dataclass per instruction), `TensorSpec`,
  `PythonConstraints`.
- `program.py`: `Program`, `Entry`, `Limits`, `TrainingPlan`; canonical encoding
  (`encode_program` / `decode_program`) and `compute_program_cid`.
- `validate.py`: structural validation (ids defined before use, state updates).
- `kernels.py`: what each instruction does on torch tensors.
- `gas.py`: the gas schedule (FLOPs and bytes per instruction).
- `plan.py`: slots, last-use freeing, meta-tensor planning (shapes, dtypes, costs, limits).
- `tensors.py`: tensors as canonical bytes, hashes, the state `TensorManager`.
- `interpreter.py`: `VM`, `Session`, `Metrics`, deterministic mode.
- `backends/`: hardware backends (CPU, CUDA, MPS, WGPU-unavailable), detection, selection.
- `frontends/`: `compile_torch` (torch.fx), `from_onnx`, `from_bml`, and the training
  program builder they share.
- `loop.py`: run a training program's entries over arrays (epochs, batches, evaluation).
"""

from bcai.vm.interpreter import VM, Metrics, PythonBridge, Session, deterministic_mode
from bcai.vm.isa import *  # noqa: F401,F403  (every instruction class)
from bcai.vm.isa import INSTRUCTIONS, Instruction, PythonConstraints, TensorSpec
from bcai.vm.backends import detect_backends, select_backend
from bcai.vm.program import (Entry, Limits, Program, TrainingPlan, compute_program_cid, decode_program,
                             encode_program)
from bcai.vm.tensors import compute_tensors_hash, decode_tensors, encode_tensors
