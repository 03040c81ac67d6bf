;; expect: invalid_module
(module (import "bcai" "open_file" (func (param i32 i32) (result i32))) (func (export "run")))
