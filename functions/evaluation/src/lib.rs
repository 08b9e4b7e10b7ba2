//! Running a tenant's rule modules on customers.
//!
//! The rules API uses the [`Runner`] to test a rule; the assign function uses all of it:
//! a DynamoDB Streams batch of customer changes goes through [`stream::Assigner`], which
//! loads each tenant's rules once per batch ([`TenantRules`]), evaluates them in priority
//! order, and writes back only what changed, conditional on the evaluated version.

mod runner;
mod tenant;

pub mod backfill;
pub mod stream;

pub use runner::{EvaluationError, Runner, engine_config, limits, raw_output};
pub use tenant::TenantRules;
