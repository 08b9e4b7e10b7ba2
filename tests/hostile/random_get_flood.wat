;; attack: asks random_get for 4 GiB - 1 bytes (and then for 1 MiB more than its
;; memory), to make the host allocate or write out of bounds.
;; expect: run trap: exceeds limit 65536
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $random (i32.const 0) (i32.const 1048576)))
    (drop (call $random (i32.const 0) (i32.const -1)))))
