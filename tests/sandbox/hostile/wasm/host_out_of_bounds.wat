;; expect: trap
(module (import "bcai" "write_output" (func $w (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $w (i32.const 65000) (i32.const 1000))))
