;; expect: invalid_module
;; A memory imported from the host module (to alias another execution's memory).
(module (import "bcai" "memory" (memory 1)) (func (export "run")))
