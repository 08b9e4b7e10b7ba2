;; attack: a library with no entry point (nothing to run; must not reach the runner).
;; expect: upload: missing export `_start`
(module
  (memory (export "memory") 1)
  (func (export "main") (result i32) (i32.const 0)))
