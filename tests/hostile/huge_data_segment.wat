;; attack: a data segment placed at 4 GiB - 64 KiB, far past the one page of memory
;; it declares, hoping the host writes it wherever the offset points.
;; expect: run trap: out of bounds memory access
(module
  (memory (export "memory") 1)
  (data (i32.const 0xffff0000) "payload written out of bounds")
  (func (export "_start")))
