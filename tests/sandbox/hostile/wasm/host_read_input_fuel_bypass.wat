;; expect: out_of_fuel
;; limits: fuel=1000000 timeout_ms=30000
;; input: 33554432
;; Thirty host reads of a 32 MiB input: a gigabyte copied for ~400 units of fuel, when
;; fuel is meant to bound the work (memory.copy pays one unit a byte). Within its fuel on
;; a fast node, past its deadline on a slow one: verifiers would disagree. Host functions
;; now pay a unit per byte they copy.
(module (import "bcai" "read_input" (func $read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 512)
  (func (export "run") (local $i i32)
    (loop $more
      (drop (call $read (i32.const 0) (i32.const 0) (i32.const 33554432)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 30))))))
