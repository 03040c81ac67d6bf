;; expect: trap
;; write_output(16, 0xFFFFFFF8): ptr + len wraps to 8 in 32 bits; the host adds in
;; Python integers, so the span is [16, 2^32 + 8) and traps.
(module (import "bcai" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $write (i32.const 16) (i32.const 0xFFFFFFF8))))
