;; expect: trap
;; write_output(-1, 2): the pointer is read as u32 0xFFFFFFFF; the span ends past memory.
(module (import "bcai" "write_output" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $write (i32.const -1) (i32.const 2))))
