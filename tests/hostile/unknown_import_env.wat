;; attack: links against a host function outside WASI (an `env` import a
;; toolchain would resolve to anything the host offers).
;; expect: upload: unknown import `env::abort`
(module
  (import "env" "abort" (func $abort (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $abort (i32.const 1))))
