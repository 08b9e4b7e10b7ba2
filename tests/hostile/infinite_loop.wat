;; attack: spins forever in `_start` to hold a CPU and a pool slot.
;; expect: run out_of_fuel: rule ran out of fuel (limit 11000000)
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i64)
    (loop $spin
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br $spin))))
