;; expect: out_of_fuel
;; A tail-call loop never grows the stack; fuel still ends it.
(module (func $f (return_call $f)) (func (export "run") (call $f)))
