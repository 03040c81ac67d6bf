;; expect: trap
;; The export named "memory" is a function: host calls find no memory and trap.
(module (import "bcai" "log" (func $log (param i32 i32)))
  (func (export "memory"))
  (func (export "run") (call $log (i32.const 0) (i32.const 1))))
