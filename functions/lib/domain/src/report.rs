//! The Annual Sales Summary per Customer: one row per customer with sales in the year,
//! the twelve monthly totals and the year total, the segment as a column.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::sales::{Amount, YearTotals};
use crate::{Customer, Segment};

/// The segment column: which segment the customer is in now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SegmentColumn {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AnnualSalesRow {
    pub customer_id: String,
    /// First and last name; `null` for a customer deleted since its sales were recorded
    /// (its sales still count).
    pub name: Option<String>,
    pub email: Option<String>,
    pub segment: Option<SegmentColumn>,
    pub currency: String,
    /// January first.
    #[schema(value_type = Vec<String>)]
    pub months: [Amount; 12],
    #[schema(value_type = String)]
    pub total: Amount,
    pub orders: u64,
}

/// Highest total first; equal totals by customer id, so pages are stable.
pub fn rank(totals: &mut [YearTotals]) {
    totals.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
}

/// The rows of ranked totals, joined with the customers and segments they name.
pub fn rows(
    totals: &[YearTotals],
    customers: &[Customer],
    segments: &[Segment],
) -> Vec<AnnualSalesRow> {
    let customers: HashMap<&str, &Customer> =
        customers.iter().map(|c| (c.id.as_str(), c)).collect();
    let segments: HashMap<&str, &Segment> = segments.iter().map(|s| (s.id.as_str(), s)).collect();
    totals
        .iter()
        .map(|t| {
            let customer = customers.get(t.customer_id.as_str());
            let segment = customer
                .and_then(|c| c.segment_id.as_deref())
                .and_then(|id| segments.get(id))
                .map(|s| SegmentColumn {
                    id: s.id.clone(),
                    name: s.name.clone(),
                });
            AnnualSalesRow {
                customer_id: t.customer_id.clone(),
                name: customer.map(|c| full_name(c)),
                email: customer.map(|c| c.email.clone()),
                segment,
                currency: t.currency.clone(),
                months: t.months,
                total: t.total,
                orders: t.orders,
            }
        })
        .collect()
}

fn full_name(customer: &Customer) -> String {
    [
        customer.first_name.as_deref(),
        customer.last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join(" ")
}

/// The CSV header of the report.
pub const CSV_HEADER: [&str; 19] = [
    "customer_id",
    "name",
    "email",
    "segment",
    "currency",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "total",
    "orders",
];

impl AnnualSalesRow {
    /// The row's cells in [`CSV_HEADER`] order.
    pub fn csv_cells(&self) -> Vec<String> {
        let mut cells = vec![
            self.customer_id.clone(),
            self.name.clone().unwrap_or_default(),
            self.email.clone().unwrap_or_default(),
            self.segment
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            self.currency.clone(),
        ];
        cells.extend(self.months.iter().map(Amount::to_string));
        cells.push(self.total.to_string());
        cells.push(self.orders.to_string());
        cells
    }
}

/// The report as CSV (RFC 4180: CRLF line ends, quoted only where needed), header first.
pub fn to_csv(rows: &[AnnualSalesRow]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * (rows.len() + 1)));
    // Writing to memory cannot fail, and every record has the header's length.
    let _ = writer.write_record(CSV_HEADER);
    for row in rows {
        let _ = writer.write_record(row.csv_cells());
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn totals(id: &str, total: &str) -> YearTotals {
        YearTotals {
            customer_id: id.into(),
            year: 2026,
            currency: "EUR".into(),
            months: [Amount::ZERO; 12],
            total: Amount::parse(&json!(total)).unwrap(),
            orders: 1,
        }
    }

    #[test]
    fn ranks_by_total_then_id() {
        let mut all = vec![
            totals("b", "10"),
            totals("c", "99.5"),
            totals("a", "10"),
            totals("d", "-1"),
        ];
        rank(&mut all);
        let order: Vec<_> = all.iter().map(|t| t.customer_id.as_str()).collect();
        assert_eq!(order, ["c", "a", "b", "d"]);
    }

    #[test]
    fn a_deleted_customer_keeps_its_row_without_a_name() {
        let rows = rows(&[totals("gone", "5")], &[], &[]);
        assert_eq!(rows[0].name, None);
        assert_eq!(rows[0].csv_cells().len(), CSV_HEADER.len());
        assert_eq!(rows[0].csv_cells()[17], "5.00");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let mut row = rows(&[totals("a", "5")], &[], &[]).remove(0);
        row.name = Some("Smith, \"Jr\"".into());
        let text = to_csv(&[row]);
        let second = text.split("\r\n").nth(1).unwrap();
        assert!(
            second.starts_with("a,\"Smith, \"\"Jr\"\"\",,,EUR,0.00,"),
            "{second}"
        );
    }
}
