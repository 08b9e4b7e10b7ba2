;; attack: declares a function table of 100 million entries (800 MB of host memory
;; if the host allocated it).
;; expect: upload: module table does not fit in pooling allocator requirements: table index 0 has a minimum element size of 100000000 which exceeds the limit of 10000
(module
  (table 100000000 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
