;; expect: memory_limit
(module (memory (export "memory") 60000) (func (export "run")))
