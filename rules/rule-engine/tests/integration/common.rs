//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, EngineConfig, Limits, LoadedModule, ModuleHash, RuleEngine, RunReport,
};
use serde_json::{Value, json};

/// Maxima of the shared test engine: production defaults, but enough fuel to
/// let a rule reach its deadline.
pub fn maxima() -> Limits {
    Limits {
        fuel: 1 << 40,
        ..Limits::default()
    }
}

/// One engine for the whole test binary, like one per Lambda process.
pub fn engine() -> &'static RuleEngine {
    static ENGINE: OnceLock<RuleEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        RuleEngine::new(EngineConfig {
            maxima: maxima(),
            ..EngineConfig::default()
        })
        .expect("engine")
    })
}

/// Validates, precompiles and loads a module, like upload then evaluation.
pub fn load(wasm: &[u8]) -> LoadedModule {
    let engine = engine();
    engine
        .validate(wasm, DEFAULT_MAX_MODULE_BYTES)
        .expect("module should validate");
    let artifact = engine.precompile(wasm).expect("precompile");
    // SAFETY: the artifact comes from `precompile` just above.
    unsafe { engine.load_artifact(ModuleHash::of(wasm), &artifact) }.expect("load artifact")
}

/// Path of a hostile test module.
pub fn hostile_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(format!("{name}.wat"))
}

/// A hostile test module, compiled from its `.wat` file.
pub fn hostile_wasm(name: &str) -> Vec<u8> {
    let path = hostile_path(name);
    wat::parse_file(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Where the example rules are built: `$RULES_WASM_DIR` or `<repo>/target/rules-wasm`.
pub fn wasm_dir() -> PathBuf {
    match std::env::var_os("RULES_WASM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/rules-wasm"),
    }
}

/// A compiled example rule. Fails (never skips) when it was not built.
pub fn example_wasm(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}\nBuild the example rules first: rules/build-examples.sh",
            path.display()
        )
    })
}

/// An ABI v1 input for a customer with these custom fields.
pub fn input_with_fields(fields: Value) -> Vec<u8> {
    json!({
        "abi": 1,
        "customer": {
            "id": "cust-1",
            "email": "ana@example.com",
            "first_name": "Ana",
            "last_name": null,
            "document": null,
            "phone": null,
            "segment": {"id": "seg-1", "name": "retail"},
            "fields": fields
        },
        "segments": [{"id": "seg-1", "name": "retail"}, {"id": "seg-2", "name": "gold"}],
        "rule": {"name": "tier", "version": 1}
    })
    .to_string()
    .into_bytes()
}

/// Runs with the engine defaults.
pub fn run(module: &LoadedModule, input: &[u8]) -> RunReport {
    engine().run(module, input, &Limits::default())
}
