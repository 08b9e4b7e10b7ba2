;; Declares 32 MiB of initial memory: refused while instantiating.
(module
  (memory (export "memory") 512)
  (func (export "_start")))
