;; Tries to see what the previous run in the same pool slot left behind (which could be
;; another customer's, or another tenant's, data). It checks that everything is as a
;; fresh instance has it, then leaves a trace in every place a slot could keep:
;; a data segment's byte, an untouched initial page, grown pages on both sides of the
;; keep-resident sizes, a table entry. Exit status 10-15 names the trace it found.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (type $answer (func (result i32)))
  (memory (export "memory") 2)
  (table $table 1 funcref)
  (elem (table $table) (i32.const 0) func $one)
  (elem declare func $two)
  (global $runs (mut i32) (i32.const 0))
  (data (i32.const 16) "{\"clusters\":{}}")
  (data (i32.const 64) "a")
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $expect (param $ok i32) (param $status i32)
    (if (i32.eqz (local.get $ok)) (then (call $exit (local.get $status)))))
  (func (export "_start")
    ;; What a fresh instance has.
    (call $expect (i32.eqz (global.get $runs)) (i32.const 10))
    (call $expect (i32.eq (i32.load8_u (i32.const 64)) (i32.const 97)) (i32.const 11))
    (call $expect (i32.eqz (i32.load (i32.const 70000))) (i32.const 12))
    (call $expect (i32.eq (memory.size) (i32.const 2)) (i32.const 13))
    (call $expect (i32.eq (call_indirect (type $answer) (i32.const 0)) (i32.const 1)) (i32.const 15))
    ;; Grown pages start zeroed: 200000 is inside every keep-resident size, 6000000
    ;; beyond 4 MiB.
    (drop (memory.grow (i32.const 100)))
    (call $expect (i32.eqz (i32.load (i32.const 200000))) (i32.const 14))
    (call $expect (i32.eqz (i32.load (i32.const 6000000))) (i32.const 14))
    ;; Traces for the next run.
    (global.set $runs (i32.const 1))
    (i32.store8 (i32.const 64) (i32.const 98))
    (i32.store (i32.const 70000) (i32.const 7))
    (i32.store (i32.const 200000) (i32.const 7))
    (i32.store (i32.const 6000000) (i32.const 7))
    (table.set $table (i32.const 0) (ref.func $two))
    ;; The output: one iovec at 0 pointing at the document at 16.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
