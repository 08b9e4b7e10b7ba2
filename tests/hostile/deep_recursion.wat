;; attack: recurses without end, with large frames, to overflow the host stack.
;; expect: run stack_overflow: rule exhausted the wasm call stack
(module
  (memory (export "memory") 1)
  (func $dive (param $a i64) (param $b i64) (param $c i64) (param $d i64) (result i64)
    (local $x i64) (local $y i64) (local $z i64)
    (i64.add
      (call $dive (local.get $b) (local.get $c) (local.get $d) (local.get $a))
      (local.get $a)))
  (func (export "_start")
    (drop (call $dive (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4)))))
