;; expect: invalid_module
(module (import "bcai" "write_output" (func (param i64 i64))) (func (export "run")))
