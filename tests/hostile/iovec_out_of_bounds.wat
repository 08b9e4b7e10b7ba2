;; attack: hands fd_write an iovec that points past the end of its memory (and one
;; whose length wraps around), hoping the host reads its own memory instead. The
;; first one already stops the rule.
;; expect: run trap: Pointer out of bounds
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; iovec 1: 4 KiB at 64 KiB - 16 (crosses the end of memory).
    (i32.store (i32.const 0) (i32.const 65520))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    ;; iovec 2: base 16, length 0xffffffff.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const -1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    ;; The iovec array itself out of bounds.
    (drop (call $fd_write (i32.const 1) (i32.const 70000) (i32.const 1) (i32.const 16)))))
