;; expect: trap
;; An active data segment at 0xFFFFFFF0 of a one-page memory: instantiation traps
;; (no write at the wrapped-around address, no host memory touched).
(module (memory (export "memory") 1)
  (data (i32.const 0xFFFFFFF0) "abcdefghijklmnopqrstuvwxyz")
  (func (export "run")))
