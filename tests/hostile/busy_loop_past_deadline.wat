;; attack: with fuel to spare (the rule raises its own fuel limit to the maximum,
;; 100 million), keeps running past the wall-clock deadline. The loop is a dependent
;; chain of square roots and divisions: few units of fuel, many cycles each, so the
;; fuel would last about 200 ms on the CI machine and the deadline (10 ms) always comes
;; first. (A plain counting loop burns 100 million fuel in 10 to 30 ms there: which
;; limit fired depended on the machine's load.)
;; limits: {"fuel": 100000000, "timeout_ms": 10}
;; expect: run timeout: rule exceeded its deadline of 10 ms
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $x f64)
    (local.set $x (f64.const 2))
    (loop $spin
      (local.set $x (f64.div (f64.sqrt (local.get $x)) (f64.const 0.999)))
      (local.set $x (f64.div (f64.sqrt (local.get $x)) (f64.const 0.999)))
      (br $spin))))
