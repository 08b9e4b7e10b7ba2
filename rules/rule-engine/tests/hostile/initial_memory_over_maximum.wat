;; Declares 32 MiB of initial memory, more than the 16 MiB maximum.
(module
  (memory (export "memory") 512)
  (func (export "_start")))
