;; Fills its whole 8 MiB memory over and over. Each round costs about five units of
;; fuel whatever `memory.fill` writes, so the next fuel yield is 20,000 rounds (some
;; 160 GB of writes, seconds) away: only the deadline's epoch trap stops it in time.
(module
  (memory (export "memory") 128)
  (func (export "_start")
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 255) (i32.const 0x800000))
      (br $forever))))
