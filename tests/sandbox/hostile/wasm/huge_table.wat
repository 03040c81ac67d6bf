;; expect: memory_limit
(module (table 10000000 funcref) (func (export "run")))
