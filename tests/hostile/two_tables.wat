;; attack: declares two function tables where a rule may have one (each table is a
;; slot of host memory sized for the largest table).
;; expect: upload: count of 2 exceeds the per-instance limit of 1
(module
  (table 1 funcref)
  (table 1 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
