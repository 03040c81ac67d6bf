;; expect: memory_limit
;; Two memories: the store allows one.
(module (memory 1) (memory 1) (func (export "run")))
