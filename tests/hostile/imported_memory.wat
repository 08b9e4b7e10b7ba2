;; attack: asks the host for a memory instead of declaring its own (to share or
;; alias host memory).
;; expect: upload: unknown import `wasi_snapshot_preview1::memory`
(module
  (import "wasi_snapshot_preview1" "memory" (memory 1))
  (export "memory" (memory 0))
  (func (export "_start")))
