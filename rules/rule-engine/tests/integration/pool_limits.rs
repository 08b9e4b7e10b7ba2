//! Modules that are valid WebAssembly but do not fit the pooling allocator (a table over
//! its element limit, a second table or memory) must be refused by `precompile`, at
//! upload: wasmtime checks these limits only when an artifact is loaded, so before this
//! check such a module was stored and then failed every evaluation with an internal
//! error (found by the API's hostile corpus, `tests/hostile/` at the repository root,
//! issue 7).

use crate::common::engine;
use rule_engine::{DEFAULT_MAX_MODULE_BYTES, EngineError, ModuleHash};

fn refused(text: &str) -> String {
    let wasm = wat::parse_str(text).expect("valid WAT");
    let engine = engine();
    engine
        .validate(&wasm, DEFAULT_MAX_MODULE_BYTES)
        .expect("passes the static checks");
    match engine.precompile(&wasm) {
        Err(EngineError::Compile(message)) => message,
        Err(other) => panic!("expected a compile error, got {other}"),
        Ok(_) => panic!("precompile accepted a module the pool cannot hold"),
    }
}

#[test]
fn a_table_over_the_pool_limit_is_refused_at_precompile() {
    let message = refused(
        r#"(module (table 100000000 funcref) (memory (export "memory") 1)
             (func (export "_start")))"#,
    );
    assert!(
        message.contains("minimum element size of 100000000 which exceeds the limit of 10000"),
        "{message}"
    );
}

#[test]
fn a_second_table_or_memory_is_refused_at_precompile() {
    let message = refused(
        r#"(module (table 1 funcref) (table 1 funcref) (memory (export "memory") 1)
             (func (export "_start")))"#,
    );
    assert!(message.contains("defined tables count of 2"), "{message}");
    let message =
        refused(r#"(module (memory (export "memory") 1) (memory 2) (func (export "_start")))"#);
    assert!(message.contains("defined memories count of 2"), "{message}");
}

#[test]
fn a_table_at_the_limit_still_loads_and_runs() {
    let wasm = wat::parse_str(
        r#"(module (table 10000 funcref) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let engine = engine();
    let artifact = engine.precompile(&wasm).expect("fits the pool");
    // SAFETY: the artifact is `precompile`'s output just above.
    let rule = unsafe { engine.load_artifact(ModuleHash::of(&wasm), &artifact) }.unwrap();
    let report = engine.run(&rule, b"{}", &Default::default());
    assert_eq!(report.outcome.unwrap_err().code(), "no_output");
}
