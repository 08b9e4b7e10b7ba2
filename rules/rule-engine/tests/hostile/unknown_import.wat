;; Imports a function the host does not provide.
(module
  (import "env" "x" (func $x))
  (memory (export "memory") 1)
  (func (export "_start") (call $x)))
