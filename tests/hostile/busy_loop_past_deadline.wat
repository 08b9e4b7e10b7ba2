;; attack: with fuel to spare (the rule raises its own fuel limit to the maximum,
;; 100 million), keeps running past the wall-clock deadline.
;; limits: {"fuel": 100000000, "timeout_ms": 10}
;; expect: run timeout: rule exceeded its deadline of 10 ms
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i64)
    (loop $spin
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (i64.store (i32.const 0) (local.get $i))
      (br $spin))))
