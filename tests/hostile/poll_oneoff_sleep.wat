;; attack: sleeps inside the host (poll_oneoff on a clock), where the epoch
;; deadline cannot interrupt it, to hold a pool slot and a Lambda for long.
;; expect: upload: import `wasi_snapshot_preview1::poll_oneoff` is not allowed: rules cannot sleep
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
