;; Calls a function in a loop forever, as a compiled rule stuck in its own code
;; does: stopped by fuel, or by the deadline when fuel is plentiful.
(module
  (memory (export "memory") 1)
  (func $step (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1)))
  (func (export "_start") (local $n i32)
    (loop $forever
      (local.set $n (call $step (local.get $n)))
      (br $forever))))
