;; attack: returns successfully without answering (an empty answer must not read as
;; "clear every output").
;; expect: run no_output: rule wrote nothing to stdout
(module
  (memory (export "memory") 1)
  (func (export "_start")))
