;; expect: trap
;; Unbounded recursion through call_indirect (a table entry calling itself): the
;; wasm stack overflows into a trap, not into the host's stack.
(module (type $t (func)) (table 1 funcref) (elem (i32.const 0) $f)
  (func $f (call_indirect (type $t) (i32.const 0)))
  (func (export "run") (call $f)))
