;; expect: out_of_fuel
;; limits: fuel=20000 timeout_ms=10000
;; A loop that does nothing but host calls (each copies 32 KiB): fuel still runs out,
;; host calls do not run for free.
(module (import "bcai" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (loop $more (drop (call $read (i32.const 0) (i32.const 0) (i32.const 32768))) (br $more))))
