;; attack: starts with 32 MiB of memory: under the tenant maximum (so the upload is
;; accepted) but over the rule's 16 MiB default.
;; expect: run memory_limit: the limit is 16777216
(module
  (memory (export "memory") 512)
  (func (export "_start")))
