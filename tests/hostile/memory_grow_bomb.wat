;; attack: grows linear memory 64 KiB at a time and touches every new page, to make
;; the host commit as much RAM as it will give.
;; expect: run memory_limit: rule tried to grow its memory to 16842752 bytes; the limit is 16777216
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $page i32)
    (loop $grow
      (local.set $page (memory.grow (i32.const 1)))
      (if (i32.ge_s (local.get $page) (i32.const 0))
        (then
          (i32.store (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1))
          (br $grow))))
    unreachable))
