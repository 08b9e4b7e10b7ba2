//! The product's rules about segments, custom fields and customers.
//!
//! Nothing here knows about HTTP or DynamoDB: handlers parse bodies with these types,
//! the store persists them.

pub mod assignment;
pub mod backfill;
pub mod customer;
pub mod field;
pub mod ids;
pub mod membership;
pub mod report;
pub mod rule;
pub mod sales;
pub mod segment;
pub mod spreadsheet;
pub mod target;
pub mod validation;

pub use assignment::Evaluation;
pub use backfill::{BackfillChain, BackfillJob, BackfillRequest, JobState, Progress, StepPhase};
pub use customer::{
    ClusterSource, Customer, CustomerDraft, CustomerSchema, RuleFailure, WrittenBy,
};
pub use field::{FieldDef, FieldDraft, FieldType, FieldValueError};
pub use sales::{Amount, AmountError, Sale, SaleDraft, SalesSummary, YearTotals};
pub use segment::{Segment, SegmentDraft, SegmentStatus};
pub use validation::{Violation, Violations, merge_patch};
