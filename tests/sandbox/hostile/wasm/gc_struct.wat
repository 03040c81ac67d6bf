;; expect: invalid_module
;; GC types are off: their heap is outside the store's memory limit.
(module (type $s (struct (field i32)))
  (func (export "run") (drop (struct.new $s (i32.const 1)))))
