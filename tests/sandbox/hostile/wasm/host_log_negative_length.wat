;; expect: trap
;; log(0, -1): a length of 4 GiB - 1 over a one-page memory.
(module (import "bcai" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (call $log (i32.const 0) (i32.const -1))))
