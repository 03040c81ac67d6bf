;; expect: invalid_module
(module (func (export "run") (param i32)))
