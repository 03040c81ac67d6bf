;; expect: output_too_large
(module (import "bcai" "write_output" (func $w (param i32 i32)))
  (memory (export "memory") 16)
  (func (export "run") (loop (call $w (i32.const 0) (i32.const 1048576)) (br 0))))
