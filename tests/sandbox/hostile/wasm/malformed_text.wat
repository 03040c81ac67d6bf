;; expect: invalid_module
(module (func (export "run") (i32.add)
