;; expect: memory_limit
;; An element segment aimed at the end of a table one element over the limit.
(module (table 100001 funcref) (func $f)
  (elem (i32.const 100000) $f)
  (func (export "run")))
