//! Runs tenant-supplied WebAssembly segmentation rules (rule ABI v1, see
//! `rules/README.md`) safely and fast.
//!
//! The lifecycle the HTTP layer follows:
//!
//! 1. upload: [`RuleEngine::validate`], then [`RuleEngine::precompile`]; store
//!    the `.wasm` and the artifact keyed by ([`ModuleHash`],
//!    [`RuleEngine::compatibility_key`]);
//! 2. evaluation: [`RuleEngine::cached`] or [`RuleEngine::load_artifact`]
//!    (deserialisation only, Cranelift never runs here) give a [`LoadedModule`];
//!    [`RuleEngine::run`] runs it with the rule's [`Limits`] and parses its stdout
//!    into a [`RuleOutput`] (the `rule-abi` crate's).

mod engine;
mod error;
mod limits;
mod pipe;
mod run;
mod validate;
mod wasi;

pub use engine::{
    EngineConfig, EngineError, InvalidHash, LoadedModule, MAX_WASM_STACK, MemoryReset, ModuleHash,
    RuleEngine,
};
pub use error::RunError;
pub use limits::Limits;
/// The ABI v1 output document, from `rule-abi` (the domain uses that crate directly).
pub use rule_abi::{OutputError, RuleOutput, SegmentChoice};
pub use run::RunReport;
pub use validate::{DEFAULT_MAX_MODULE_BYTES, ValidationError, WASI_MODULE, forbidden_imports};
