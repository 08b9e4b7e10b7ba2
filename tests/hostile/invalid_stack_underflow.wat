;; attack: well-formed binary whose code does not type-check (an add with nothing on
;; the stack), aimed at a compiler that trusts its input.
;; expect: upload: not a valid WebAssembly module
(module
  (memory (export "memory") 1)
  (func (export "_start") (drop (i32.add))))
