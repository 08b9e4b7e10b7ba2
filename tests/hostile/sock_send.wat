;; attack: sends data out over an inherited socket.
;; expect: upload: import `wasi_snapshot_preview1::sock_send` is not allowed: rules have no network access
(module
  (import "wasi_snapshot_preview1" "sock_send"
    (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $send (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))
