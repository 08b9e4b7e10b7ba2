//! Runs tenant-supplied WebAssembly segmentation rules (rule ABI v1, see
//! `rules/README.md`) safely and fast.
//!
//! The lifecycle the HTTP layer follows:
//!
//! 1. upload: [`RuleEngine::validate`], then [`RuleEngine::precompile`]; store
//!    the `.wasm` and the artifact keyed by ([`ModuleHash`],
//!    [`RuleEngine::compatibility_key`]);
//! 2. evaluation: [`RuleEngine::cached`] or [`RuleEngine::load_artifact`]
//!    (deserialisation only, Cranelift never runs here), then
//!    [`RuleEngine::run`] with the rule's [`Limits`].

mod engine;
mod error;
mod limits;
mod output;
mod pipe;
mod run;
mod validate;

pub use engine::{EngineConfig, EngineError, MAX_WASM_STACK, ModuleHash, Rule, RuleEngine};
pub use error::RunError;
pub use limits::Limits;
pub use output::{RuleOutput, SegmentChoice};
pub use run::RunReport;
pub use validate::{DEFAULT_MAX_MODULE_BYTES, ValidationError, WASI_MODULE, forbidden_imports};
