;; expect: trap
(module (memory (export "memory") 1) (data $d "abc")
  (func (export "run") (memory.init $d (i32.const 65535) (i32.const 0) (i32.const 3))))
