;; expect: invalid_module
(module (import "bcai" "log" (table 1 funcref)) (func (export "run")))
