;; attack: asks for 2 GiB of linear memory up front (32768 pages) to exhaust the
;; host at instantiation.
;; expect: upload: module needs 2147483648 bytes of memory to start; the limit is 67108864
(module
  (memory (export "memory") 32768)
  (func (export "_start")))
