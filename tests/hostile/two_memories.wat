;; attack: declares a second linear memory (multi-memory), doubling what one rule
;; can commit, and exports only the small one.
;; expect: upload: count of 2 exceeds the per-instance limit of 1
(module
  (memory (export "memory") 1)
  (memory $big 256)
  (func (export "_start")
    (i32.store $big (i32.const 0) (i32.const 1))))
