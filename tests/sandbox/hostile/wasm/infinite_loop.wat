;; expect: timeout
;; limits: fuel=10000000000
;; With a fuel budget too large to run out in time, the epoch deadline ends it.
(module (func (export "run") (loop (br 0))))
