;; expect: invalid_module
(module (memory (export "memory") 1 1 shared) (func (export "run")))
