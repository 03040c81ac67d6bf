;; expect: out_of_fuel
;; limits: fuel=20000
;; Logging is bounded (extra bytes dropped); the loop ends on fuel.
(module (import "bcai" "log" (func $l (param i32 i32))) (memory (export "memory") 1)
  (func (export "run") (local i32) (loop (call $l (i32.const 0) (i32.const 65536)) (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br 0))))
