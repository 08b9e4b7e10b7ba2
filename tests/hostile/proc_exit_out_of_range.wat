;; attack: proc_exit with a status no process can have (4096), which WASI hosts
;; treat as a fatal error rather than an exit.
;; expect: run trap: invalid exit status
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 4096))))
