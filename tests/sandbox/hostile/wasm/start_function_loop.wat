;; expect: timeout
;; limits: fuel=10000000000
;; The start function runs at instantiation: the deadline covers it too.
(module (func $s (loop (br 0))) (start $s) (func (export "run")))
