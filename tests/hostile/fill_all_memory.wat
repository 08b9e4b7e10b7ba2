;; attack: grows to the full 16 MiB a rule may have and writes every byte, so each
;; run commits the whole memory slot (repeated, this tests that the host gives it back).
;; Bulk memory costs fuel per byte, so the rule raises its fuel to the maximum.
;; limits: {"fuel": 100000000}
;; expect: run exit: rule exited with status 9
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 255)))
    (memory.fill (i32.const 0) (i32.const 0xAB) (i32.const 16777216))
    (call $exit (i32.const 9))))
