;; expect: trap
(module (import "bcai" "log" (func $l (param i32 i32))) (func (export "run") (call $l (i32.const 0) (i32.const 1))))
