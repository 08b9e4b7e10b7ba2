//! The `customers` Lambda: wiring only; the `api` crate handles requests. The one HTTP
//! function that reads and writes workbooks, so the only one that links `workbook`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    api::run_with_workbooks(api::Function::Customers, Arc::new(workbook::Workbooks)).await
}
