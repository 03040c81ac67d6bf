;; expect: invalid_module
(module (func (export "main")))
