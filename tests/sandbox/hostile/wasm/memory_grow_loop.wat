;; expect: memory_limit
(module (memory (export "memory") 1)
  (func (export "run") (loop (drop (memory.grow (i32.const 1))) (br 0))))
