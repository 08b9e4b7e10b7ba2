//! Upload-time checks: is this a module the rule ABI v1 can run?
//!
//! Cheap (no compilation) and precise, so a tenant learns at upload why a
//! module is refused instead of getting a link error at evaluation time.

use std::collections::HashMap;
use std::fmt;

use wasmtime::wasmparser::{self, ExternalKind, Parser, Payload, TypeRef};

/// Largest module accepted by default (4 MiB).
pub const DEFAULT_MAX_MODULE_BYTES: usize = 4 << 20;

/// The only import module rules may use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Preview1 functions that exist but rules may not import, with the reason.
///
/// `poll_oneoff` would let a rule sleep inside the host, where the epoch
/// deadline cannot interrupt it; sockets are meaningless without network access.
const FORBIDDEN: &[(&str, &str)] = &[
    ("poll_oneoff", "rules cannot sleep or wait for events"),
    ("sock_accept", "rules have no network access"),
    ("sock_recv", "rules have no network access"),
    ("sock_send", "rules have no network access"),
    ("sock_shutdown", "rules have no network access"),
];

/// Why a module was refused at upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("module is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    #[error("unknown import `{module}::{name}`")]
    UnknownImport { module: String, name: String },
    #[error("import `{module}::{name}` is not allowed: {reason}")]
    ForbiddenImport {
        module: String,
        name: String,
        reason: &'static str,
    },
    #[error("import `{module}::{name}` has type {found}; ABI v1 expects {expected}")]
    ImportType {
        module: String,
        name: String,
        found: String,
        expected: String,
    },
    #[error("module needs {initial} bytes of memory to start; the limit is {limit}")]
    InitialMemoryTooLarge { initial: u64, limit: usize },
    #[error("missing export `{0}`")]
    MissingExport(&'static str),
    #[error("export `{name}` must be {expected}")]
    ExportType {
        name: &'static str,
        expected: &'static str,
    },
}

/// A function type in the text format's style, e.g. `(i32, i64) -> i32`.
/// Used both to compare signatures and to print them in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature(String);

impl Signature {
    pub(crate) fn new<'a>(
        params: impl IntoIterator<Item = &'a str>,
        results: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let params: Vec<_> = params.into_iter().collect();
        let results: Vec<_> = results.into_iter().collect();
        let results = match results.as_slice() {
            [single] => (*single).to_string(),
            many => format!("({})", many.join(", ")),
        };
        Signature(format!("({}) -> {results}", params.join(", ")))
    }

    fn of_parsed(ty: &wasmparser::FuncType) -> Self {
        Signature::new(
            ty.params().iter().map(parsed_name),
            ty.results().iter().map(parsed_name),
        )
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parsed_name(ty: &wasmparser::ValType) -> &'static str {
    match ty {
        wasmparser::ValType::I32 => "i32",
        wasmparser::ValType::I64 => "i64",
        wasmparser::ValType::F32 => "f32",
        wasmparser::ValType::F64 => "f64",
        wasmparser::ValType::V128 => "v128",
        wasmparser::ValType::Ref(_) => "ref",
    }
}

/// The host functions a rule may import: name -> signature, taken from the
/// real linker so the list cannot drift from what the host provides.
pub(crate) type HostFunctions = HashMap<String, Signature>;

/// Checks the ABI part of a module that wasmtime already validated, and that
/// its initial memory fits in `memory_limit` (the pool could not host it).
pub(crate) fn check_abi(
    wasm: &[u8],
    host: &HostFunctions,
    memory_limit: usize,
) -> Result<(), ValidationError> {
    let invalid =
        |error: wasmparser::BinaryReaderError| ValidationError::Invalid(error.to_string());
    let mut types = Vec::new();
    // Type index of every function, imported ones first (the index space order).
    let mut functions = Vec::new();
    let mut exports = HashMap::new();

    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(Signature::of_parsed(&ty.map_err(invalid)?));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    check_import(&import, &types, host)?;
                    if let TypeRef::Func(index) = import.ty {
                        functions.push(index);
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    let page_size = 1u64 << memory.page_size_log2.unwrap_or(16);
                    let initial = memory.initial.saturating_mul(page_size);
                    if initial > memory_limit as u64 {
                        return Err(ValidationError::InitialMemoryTooLarge {
                            initial,
                            limit: memory_limit,
                        });
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    functions.push(index.map_err(invalid)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    exports.insert(export.name, (export.kind, export.index));
                }
            }
            _ => {}
        }
    }

    match exports.get("_start") {
        None => return Err(ValidationError::MissingExport("_start")),
        Some((ExternalKind::Func | ExternalKind::FuncExact, index)) => {
            let ty = functions
                .get(*index as usize)
                .and_then(|ty| types.get(*ty as usize));
            if ty != Some(&Signature::new([], [])) {
                return Err(start_type());
            }
        }
        Some(_) => return Err(start_type()),
    }
    match exports.get("memory") {
        None => Err(ValidationError::MissingExport("memory")),
        Some((ExternalKind::Memory, _)) => Ok(()),
        Some(_) => Err(ValidationError::ExportType {
            name: "memory",
            expected: "a memory",
        }),
    }
}

fn start_type() -> ValidationError {
    ValidationError::ExportType {
        name: "_start",
        expected: "a function with no parameters and no results",
    }
}

fn check_import(
    import: &wasmparser::Import<'_>,
    types: &[Signature],
    host: &HostFunctions,
) -> Result<(), ValidationError> {
    let module = import.module.to_string();
    let name = import.name.to_string();
    let expected = match host.get(import.name) {
        Some(expected) if import.module == WASI_MODULE => expected,
        _ => return Err(ValidationError::UnknownImport { module, name }),
    };
    if let Some((_, reason)) = FORBIDDEN.iter().find(|(n, _)| *n == import.name) {
        return Err(ValidationError::ForbiddenImport {
            module,
            name,
            reason,
        });
    }
    let found = match import.ty {
        TypeRef::Func(index) | TypeRef::FuncExact(index) => types
            .get(index as usize)
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("type #{index}")),
        TypeRef::Table(_) => "a table".to_string(),
        TypeRef::Memory(_) => "a memory".to_string(),
        TypeRef::Global(_) => "a global".to_string(),
        TypeRef::Tag(_) => "a tag".to_string(),
    };
    if found != expected.0 {
        return Err(ValidationError::ImportType {
            module,
            name,
            found,
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Names of forbidden imports, for documentation and tests.
pub fn forbidden_imports() -> impl Iterator<Item = &'static str> {
    FORBIDDEN.iter().map(|(name, _)| *name)
}
