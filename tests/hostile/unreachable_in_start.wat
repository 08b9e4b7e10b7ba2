;; attack: traps at once (what a guest panic compiles to).
;; expect: run trap: wasm `unreachable` instruction executed
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
