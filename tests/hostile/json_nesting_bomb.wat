;; attack: an answer nested 20,000 arrays deep (40 KB, under the output limit), to
;; overflow the stack of a recursive JSON parser on the host.
;; expect: run output_not_json: recursion limit exceeded
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{\"clusters\": {\"tier\": ")
  (func (export "_start")
    ;; 22 bytes of prefix at 64, then 20,000 `[` and 20,000 `]` right after it.
    (memory.copy (i32.const 1024) (i32.const 64) (i32.const 22))
    (memory.fill (i32.const 1046) (i32.const 0x5b) (i32.const 20000))
    (memory.fill (i32.const 21046) (i32.const 0x5d) (i32.const 20000))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 40022))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
