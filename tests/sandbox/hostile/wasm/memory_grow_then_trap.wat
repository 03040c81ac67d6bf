;; expect: memory_limit
;; Grows until refused, then traps on purpose.
(module (memory (export "memory") 1)
  (func (export "run")
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
