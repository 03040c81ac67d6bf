;; expect: memory_limit
;; One page at a time until memory.grow says -1 (no single big request to refuse), then
;; fail: the cap holds for many small grows as for one big one.
(module (memory (export "memory") 1)
  (func (export "run")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
