;; expect: trap
;; read_input to the last byte of the address space: the host checks the whole span
;; against memory before it copies anything.
(module (import "bcai" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (drop (call $read (i32.const 0xFFFFFFFF) (i32.const 0) (i32.const 2)))))
