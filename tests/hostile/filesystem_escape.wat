;; attack: looks for preopened directories (fd 3 onwards) and opens /etc/passwd
;; through them, reads stdin's siblings and writes to fds it was never given. All
;; of it must fail with an error code (no preopens); the rule then says so in its
;; log and answers normally. Any success exits with status 66.
;; expect: ok: no preopens; path_open refused; fd 9 refused
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "/etc/passwd")
  (data (i32.const 512) "no preopens; path_open refused; fd 9 refused\n")
  (data (i32.const 768) "{\"clusters\": {}}")
  (func (export "_start")
    (local $fd i32)
    ;; fd_prestat_get on fds 3..63: all must be EBADF (8).
    (local.set $fd (i32.const 3))
    (loop $next
      (if (i32.ne (call $prestat (local.get $fd) (i32.const 128)) (i32.const 8))
        (then (call $exit (i32.const 66))))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $fd) (i32.const 64))))
    ;; path_open(3, follow symlinks, "/etc/passwd", no oflags, fd_read, ..., &fd): must fail.
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 256) (i32.const 11)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 128)))
      (then (call $exit (i32.const 66))))
    ;; Writing to an fd nobody opened: must fail.
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const 11))
    (if (i32.eqz (call $fd_write (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 16)))
      (then (call $exit (i32.const 66))))
    ;; Log, then answer.
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 45))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 768))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
