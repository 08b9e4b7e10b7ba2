;; Traps immediately.
(module
  (memory (export "memory") 1)
  (func $fail unreachable)
  (func (export "_start") (call $fail)))
