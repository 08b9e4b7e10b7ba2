//! How every Lambda function logs, HTTP and stream alike, without either depending on
//! the other's crate.

/// Structured JSON logs at `LOG_LEVEL` (default `info`), the format CloudWatch indexes:
/// one object per line with `timestamp` (RFC 3339) and `level`, which Lambda's JSON log
/// format needs to filter by level (without a timestamp it files every line as INFO),
/// and the spans: lambda_runtime's `requestId`, the request's `request_id` and `tenant`.
/// Calling it again is harmless.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .try_init();
}
