;; attack: writes 4 MiB to stderr (the rule's log) in 32 KiB pieces, then a valid
;; answer: the log must be capped, and the answer still count.
;; expect: ok: [log truncated at 16384 bytes]
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{\"clusters\": {\"tier\": \"B\"}}")
  (func (export "_start")
    (local $i i32)
    (memory.fill (i32.const 16384) (i32.const 0x21) (i32.const 32768))
    (i32.store (i32.const 0) (i32.const 16384))
    (i32.store (i32.const 4) (i32.const 32768))
    (loop $again
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 128))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 27))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
