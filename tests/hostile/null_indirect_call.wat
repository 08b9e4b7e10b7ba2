;; attack: calls through an empty table slot (a null function pointer).
;; expect: run trap: uninitialized element
(module
  (type $void (func))
  (table 4 funcref)
  (memory (export "memory") 1)
  (func (export "_start") (call_indirect (type $void) (i32.const 2))))
