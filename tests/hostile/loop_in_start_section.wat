;; attack: spins forever in the module's start function, which runs while the host
;; instantiates the module, before `_start` is ever called.
;; expect: run out_of_fuel: rule ran out of fuel
(module
  (memory (export "memory") 1)
  (func $spin (loop $forever (br $forever)))
  (start $spin)
  (func (export "_start")))
