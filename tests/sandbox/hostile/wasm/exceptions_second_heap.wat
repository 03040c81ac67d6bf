;; expect: invalid_module
;; Exceptions are off: a caught exception (exnref) lives in the GC heap, which the store
;; limit counts as a memory of its own, next to the linear memory. Kept in a table, 100 000
;; exceptions of 3 KiB each held ~300 MiB beyond a full linear memory under one limit.
(module
  (tag $t (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128))
  (table $kept 100000 exnref)
  (memory (export "memory") 1)
  (func $caught (result exnref)
    (block $h (result exnref)
      (try_table (catch_all_ref $h)
        (throw $t (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2)
                  (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2)
                  (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2)
                  (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2) (v128.const i64x2 1 2)))
      (unreachable)))
  (func (export "run") (local $i i32)
    (loop $more
      (table.set $kept (local.get $i) (call $caught))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100000))))))
