;; expect: trap
;; An exported memory whose declared maximum (4 GiB) is far over the limit: the
;; declaration is allowed, one big grow towards it returns -1. (Reported `trap`, not
;; `memory_limit`: wasmtime-py tells nothing of refused grows, and the inference needs
;; the memory within 1 MiB of the cap; see docs/sandbox.md, Known limits.)
(module (memory (export "memory") 1 65536)
  (func (export "run")
    (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))))
