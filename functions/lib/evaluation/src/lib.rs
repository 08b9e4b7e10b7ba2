//! Running a tenant's rule modules on customers.
//!
//! The rules API uses the [`Runner`] to test a rule; the assign function uses all of it:
//! a DynamoDB Streams batch of customer changes goes through [`stream::Assigner`], which
//! groups the batch by customer, reads each tenant's rules ([`TenantRules`]) and its
//! customers' sales once per batch, evaluates the customers concurrently (each one's
//! records in stream order, its rules in priority order), and writes back only what
//! changed, conditional on the evaluated version.

mod runner;
mod tenant;

pub mod backfill;
pub mod counting;
pub mod stream;

pub use runner::{EvaluationError, Runner, engine_config, limits};
pub use tenant::TenantRules;
