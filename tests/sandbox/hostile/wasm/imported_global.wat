;; expect: invalid_module
;; A global imported under a host function's name: only functions of the exact type pass.
(module (import "bcai" "input_len" (global i32)) (func (export "run")))
