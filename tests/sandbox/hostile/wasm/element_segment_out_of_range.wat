;; expect: trap
;; An active element segment far past the end of its table: instantiation traps.
(module (table 10 funcref) (func $f)
  (elem (i32.const 99990) $f $f $f)
  (func (export "run")))
