;; Declares 2 MiB of initial memory: fine for the maximum, too much for a
;; rule limited to 1 MiB.
(module
  (memory (export "memory") 32)
  (func (export "_start")))
