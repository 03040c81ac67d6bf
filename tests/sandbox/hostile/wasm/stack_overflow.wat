;; expect: trap
(module (func $f (export "run") (call $f)))
