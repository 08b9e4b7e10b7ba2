;; Fills its whole 8 MiB memory over and over. wasmtime charges `memory.fill` a unit of
;; fuel per byte, so each round crosses a fuel yield (every 100,000 units) and fuel paces
;; it like any loop: it stops at a yield at the deadline, or runs out of fuel.
(module
  (memory (export "memory") 128)
  (func (export "_start")
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 255) (i32.const 0x800000))
      (br $forever))))
