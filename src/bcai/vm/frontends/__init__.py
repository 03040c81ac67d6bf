"""Front ends: torch modules, ONNX files and BML documents -> programs.

- `builder.py`: `ProgramBuilder` and `build_training_program` (the shape of a training
  program: init, forward, train_step, evaluate), `OptimizerConfig`.
- `torch_fx.py`: `compile_torch(module, example_inputs)` via torch.fx.
- `onnx.py`: `from_onnx(path_or_bytes)`.
- `onnx_backend.py`: `BcaiBackend`, an `onnx.backend.base.Backend` (the ONNX conformance suite runs
  against it).
- `templates.py`: BML model templates (MLP, CNN, LSTM, Transformer).
- `bml.py`: `from_bml(yaml)`, `parse_bml`.
"""
