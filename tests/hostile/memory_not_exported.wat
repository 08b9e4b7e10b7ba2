;; attack: hides its memory, so WASI host calls have nothing to read from.
;; expect: upload: missing export `memory`
(module
  (memory 1)
  (func (export "_start")))
