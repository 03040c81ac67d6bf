;; expect: out_of_fuel
(module (func (export "run") (local i32)
  (loop (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br 0))))
