;; expect: invalid_module
;; 64-bit memory is off (the host's pointer checks are 32-bit).
(module (memory i64 1) (func (export "run")))
