;; attack: an entry point with a signature the host does not call that way.
;; expect: upload: export `_start` must be a function with no parameters and no results
(module
  (memory (export "memory") 1)
  (func (export "_start") (param i64 i64) (result i32) (i32.const 0)))
