;; attack: writes 1 MiB to stdout in 8 KiB pieces (ignoring errors), to make the host
;; buffer without bound.
;; expect: run output_too_large: output exceeded 65536 bytes
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (memory.fill (i32.const 4096) (i32.const 0x7b) (i32.const 8192))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (i32.const 8192))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 128))))))
