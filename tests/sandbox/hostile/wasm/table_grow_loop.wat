;; expect: trap
;; table.grow in steps of 1000 until it says -1 (store limit: 100 000 elements), then
;; trap: the table never passes its cap.
(module (table 1 funcref)
  (func (export "run")
    (loop $more (br_if $more (i32.ne (table.grow (ref.null func) (i32.const 1000)) (i32.const -1))))
    (if (i32.gt_u (table.size) (i32.const 100000)) (then (return)))
    unreachable))
