;; attack: imports a real WASI function with a wrong signature, hoping the host
;; reads arguments that were never passed.
;; expect: upload: import `wasi_snapshot_preview1::fd_write` has type (i64) -> i32; ABI v1 expects (i32, i32, i32, i32) -> i32
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $fd_write (i64.const -1)))))
