//! The HTTP integration tests, one module per area, in one binary: they share two stacks
//! of moto and `local-stack` (see `tests/lib.rs`), and the product is linked once.
//! `hostile_memory` stays a binary of its own, because it measures this process's memory.

#[path = "../common/mod.rs"]
mod common;
#[path = "../hostile_corpus/mod.rs"]
mod hostile_corpus;

mod assign;
mod assign_events;
mod backfill;
mod contention;
mod contract;
mod customers;
mod events;
mod faults;
mod fields;
mod gateway;
mod hostile;
mod import_cli;
mod isolation;
mod lambda_events;
mod malformed;
mod parsers;
mod rules;
mod sales;
mod segments;
mod smoke;
mod spreadsheet;
mod targets;
mod template;
mod tenancy;
