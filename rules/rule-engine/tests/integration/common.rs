//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use rule_engine::{
    DEFAULT_MAX_MODULE_BYTES, EngineConfig, Limits, LoadedModule, ModuleHash, RuleEngine, RunReport,
};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// The example rules' cases, `rules/examples/cases.json`: one file for these tests and
/// for `rules/portability.py`, which runs the same cases under wasmtime from PyPI.
#[derive(Debug, Deserialize)]
pub struct Fixture {
    /// The full ABI v1 input every case starts from.
    base_input: Value,
    pub suites: Vec<Suite>,
}

/// Cases that hold for every module of a suite (modules implementing the same logic).
#[derive(Debug, Deserialize)]
pub struct Suite {
    pub name: String,
    pub modules: Vec<String>,
    pub cases: Vec<Case>,
}

/// One input and what every module of its suite must make of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Replaces `customer.fields`.
    fields: Option<Value>,
    /// Replaces `sales`.
    sales: Option<Value>,
    /// JSON pointer (no `~` escapes) → value to put there.
    #[serde(default)]
    set: Map<String, Value>,
    /// JSON pointers to delete.
    #[serde(default)]
    remove: Vec<String>,
    /// Sent as it is instead of a JSON input.
    stdin: Option<String>,
    pub expect: Expected,
}

/// The result a case expects: `output` or `exit`, and a text of the log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The whole output document (`RuleOutput::to_json`).
    pub output: Option<Value>,
    /// The rule's exit status.
    pub exit: Option<i32>,
    pub log: Option<String>,
}

/// The parsed fixture, once per test binary.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        serde_json::from_str(include_str!("../../../examples/cases.json"))
            .expect("rules/examples/cases.json")
    })
}

impl Fixture {
    pub fn suite(&self, name: &str) -> &Suite {
        self.suites
            .iter()
            .find(|suite| suite.name == name)
            .unwrap_or_else(|| panic!("no suite `{name}` in rules/examples/cases.json"))
    }

    /// The base input with `customer.fields` replaced.
    fn with_fields(&self, fields: Value) -> Value {
        let mut input = self.base_input.clone();
        input["customer"]["fields"] = fields;
        input
    }

    /// The bytes `case` sends to the rule's stdin.
    pub fn input(&self, case: &Case) -> Vec<u8> {
        if let Some(stdin) = &case.stdin {
            return stdin.clone().into_bytes();
        }
        let mut input = match &case.fields {
            Some(fields) => self.with_fields(fields.clone()),
            None => self.base_input.clone(),
        };
        if let Some(sales) = &case.sales {
            input["sales"] = sales.clone();
        }
        for (pointer, value) in &case.set {
            let (parent, key) = parent_of(&mut input, pointer);
            parent.insert(key.to_owned(), value.clone());
        }
        for pointer in &case.remove {
            let (parent, key) = parent_of(&mut input, pointer);
            parent.remove(key);
        }
        input.to_string().into_bytes()
    }
}

/// The object holding a JSON pointer's last key, and that key.
fn parent_of<'a, 'p>(
    document: &'a mut Value,
    pointer: &'p str,
) -> (&'a mut Map<String, Value>, &'p str) {
    let (parent, key) = pointer
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("`{pointer}` is not a JSON pointer"));
    let parent = document
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("`{pointer}`: no object at `{parent}`"));
    (parent, key)
}

/// An ABI v1 input (the fixture's base input) for a customer with these custom fields.
pub fn input_with_fields(fields: Value) -> Vec<u8> {
    fixture().with_fields(fields).to_string().into_bytes()
}

/// Runs with the engine defaults.
pub fn run(module: &LoadedModule, input: &[u8]) -> RunReport {
    engine().run(module, input, &Limits::default())
}
