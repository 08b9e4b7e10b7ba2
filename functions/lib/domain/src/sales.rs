//! Sales: what a customer bought, and the per-customer monthly totals that reports and
//! rules read instead of the sales themselves.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::{ObjectReader, Violations};

/// Ten-thousandths: the finest amount a sale may carry.
pub const AMOUNT_DECIMALS: usize = 4;
const SCALE: i64 = 10_000;

/// Why a value is not an [`Amount`]. The message is what clients see after the value's
/// JSON pointer in a 422 problem response (`/amount must be below 1,000,000,000,000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a decimal string or JSON number, or more than four decimals.
    #[error("must be a decimal amount like 1234.50 with at most 4 decimals")]
    Malformed,
    /// A trillion or more (13 or more whole digits).
    #[error("must be below 1,000,000,000,000")]
    TooLarge,
}

/// Money as an integer count of ten-thousandths. Sums are exact integer additions,
/// in this process and in DynamoDB's `ADD`, so no floating-point rounding ever
/// touches a total. Travels as a decimal string (`"1234.50"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_units(units: i64) -> Self {
        Self(units)
    }

    /// The stored form: ten-thousandths.
    pub fn units(self) -> i64 {
        self.0
    }

    /// A decimal given as a string or a JSON number with at most four decimals.
    pub fn parse(value: &Value) -> Result<Amount, AmountError> {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(AmountError::Malformed),
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !plain(whole)
            || !plain(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::Malformed);
        }
        if fraction.len() > AMOUNT_DECIMALS {
            return Err(AmountError::Malformed);
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 12 {
            return Err(AmountError::TooLarge);
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::Malformed)?
        };
        let padded = format!("{fraction:0<4}");
        let fraction: i64 = padded.parse().map_err(|_| AmountError::Malformed)?;
        // Below a trillion (12 whole digits): even a century of monthly sums fits an i64.
        let units = whole * SCALE + fraction;
        Ok(Amount(if negative { -units } else { units }))
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

/// At least two decimals, more only when they are not zero: `12.00`, `12.345`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let units = self.0.unsigned_abs();
        let scale = SCALE as u64;
        let mut fraction = format!("{:04}", units % scale);
        while fraction.len() > 2 && fraction.ends_with('0') {
            fraction.pop();
        }
        write!(f, "{sign}{}.{fraction}", units / scale)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Amount::parse(&Value::String(text)).map_err(serde::de::Error::custom)
    }
}

/// A recorded sale. Its `reference` (the order or invoice number in the merchant's
/// system) is unique per customer, so re-posting it never counts twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sale {
    pub customer_id: String,
    pub reference: String,
    pub date: NaiveDate,
    #[schema(value_type = String, example = "1234.50")]
    pub amount: Amount,
    /// ISO 4217 code, upper case.
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /customers/{id}/sales`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleDraft {
    pub date: NaiveDate,
    pub amount: Amount,
    pub currency: String,
    pub reference: String,
    pub description: Option<String>,
}

pub const REFERENCE_MAX: usize = 100;

impl SaleDraft {
    pub fn parse(body: &Value) -> Result<Self, Violations> {
        let mut reader = ObjectReader::new(body, "")?;
        reader.ignore(&["customer_id", "created_at"]);
        let date = reader.required_string("date", 10).and_then(|raw| {
            let parsed = NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                .ok()
                .filter(|d| (1970..=9999).contains(&d.year()));
            if parsed.is_none() {
                let pointer = reader.pointer("date");
                reader.violations.push(
                    pointer,
                    "must be a date like 2026-03-31 (year 1970 or later)",
                );
            }
            parsed
        });
        let amount = match reader.raw("amount") {
            None | Some(Value::Null) => {
                let pointer = reader.pointer("amount");
                reader.violations.push(pointer, "is required");
                None
            }
            Some(raw) => match Amount::parse(raw) {
                Ok(amount) => Some(amount),
                Err(error) => {
                    let pointer = reader.pointer("amount");
                    reader.violations.push(pointer, error.to_string());
                    None
                }
            },
        };
        let currency = reader.required_string("currency", 3).and_then(|raw| {
            let ok = raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_alphabetic());
            if !ok {
                let pointer = reader.pointer("currency");
                reader
                    .violations
                    .push(pointer, "must be a three-letter ISO 4217 code like EUR");
            }
            ok.then(|| raw.to_ascii_uppercase())
        });
        let reference = reader
            .required_string("reference", REFERENCE_MAX)
            .and_then(|raw| {
                let ok = raw.chars().all(|c| !c.is_control());
                if !ok {
                    let pointer = reader.pointer("reference");
                    reader
                        .violations
                        .push(pointer, "must not contain control characters");
                }
                ok.then_some(raw)
            });
        let description = reader.string("description", 1000);
        let violations = reader.finish();
        match (date, amount, currency, reference) {
            (Some(date), Some(amount), Some(currency), Some(reference)) => {
                violations.finish(Self {
                    date,
                    amount,
                    currency,
                    reference,
                    description,
                })
            }
            _ => Err(violations),
        }
    }

    pub fn into_sale(self, customer_id: String, now: DateTime<Utc>) -> Sale {
        Sale {
            customer_id,
            reference: self.reference,
            date: self.date,
            amount: self.amount,
            currency: self.currency,
            description: self.description,
            created_at: now,
        }
    }
}

impl Sale {
    /// Whether a re-post of this reference carries the same sale (an idempotent retry)
    /// rather than a different one (a conflict).
    pub fn same_as(&self, draft: &SaleDraft) -> bool {
        self.date == draft.date
            && self.amount == draft.amount
            && self.currency == draft.currency
            && self.description == draft.description
    }

    /// 1..=12.
    pub fn month(&self) -> u32 {
        self.date.month()
    }

    pub fn year(&self) -> i32 {
        self.date.year()
    }
}

/// One customer's sales of one year in one currency, month by month: kept up to date by
/// every recorded sale, so a report reads one of these per customer, never the sales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct YearTotals {
    pub customer_id: String,
    pub year: i32,
    pub currency: String,
    /// January first.
    #[schema(value_type = Vec<String>)]
    pub months: [Amount; 12],
    #[schema(value_type = String)]
    pub total: Amount,
    pub orders: u64,
}

/// What a rule sees of a customer's sales: this year's and last year's totals per
/// currency and order counts (ABI v1 key `sales`). Fields in alphabetical order, the
/// order of the keys in the document a rule reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SalesSummary {
    pub last_year: YearSummary,
    pub this_year: YearSummary,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct YearSummary {
    pub orders: u64,
    /// Amounts as decimal strings, by currency.
    pub totals: BTreeMap<String, Amount>,
    pub year: i32,
}

impl SalesSummary {
    /// The summary as of `year` from the customer's yearly totals (other years ignored).
    pub fn from_totals(year: i32, totals: &[YearTotals]) -> Self {
        let summary = |year: i32| {
            let mut out = YearSummary {
                year,
                ..YearSummary::default()
            };
            for t in totals.iter().filter(|t| t.year == year) {
                out.orders += t.orders;
                out.totals.insert(t.currency.clone(), t.total);
            }
            out
        };
        Self {
            this_year: summary(year),
            last_year: summary(year - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn amount(raw: &str) -> Result<String, AmountError> {
        Amount::parse(&json!(raw)).map(|a| a.to_string())
    }

    #[test]
    fn amounts_are_exact_decimals() {
        assert_eq!(amount("0012.5").unwrap(), "12.50");
        assert_eq!(amount("0.1").unwrap(), "0.10");
        assert_eq!(amount("-3.1415").unwrap(), "-3.1415");
        assert_eq!(amount("7").unwrap(), "7.00");
        assert_eq!(
            Amount::parse(&json!(19.99)).unwrap().to_string(),
            "19.99",
            "JSON numbers are read from their decimal text"
        );
        for bad in [
            "",
            "1.",
            ".5",
            "1e3",
            "1.23456",
            "abc",
            "1,5",
            "1000000000000",
        ] {
            assert!(amount(bad).is_err(), "{bad:?}");
        }
        assert_eq!(amount("1.23456"), Err(AmountError::Malformed));
        assert_eq!(
            AmountError::Malformed.to_string(),
            "must be a decimal amount like 1234.50 with at most 4 decimals"
        );
        assert_eq!(amount("1000000000000"), Err(AmountError::TooLarge));
        assert_eq!(
            AmountError::TooLarge.to_string(),
            "must be below 1,000,000,000,000"
        );
        let sum = ["0.1", "0.2"]
            .iter()
            .map(|s| Amount::parse(&json!(s)).unwrap())
            .fold(Amount::ZERO, |a, b| a.checked_add(b).unwrap());
        assert_eq!(sum.to_string(), "0.30");
        let back: Amount = serde_json::from_value(json!("-0.05")).unwrap();
        assert_eq!(back.units(), -500);
    }

    #[test]
    fn a_sale_lists_every_problem() {
        let err = SaleDraft::parse(&json!({"date": "2026-02-30", "currency": "euro", "x": 1}))
            .unwrap_err();
        let pointers: Vec<_> = err.0.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/date", "/amount", "/currency", "/reference", "/x"]
        );
        let draft = SaleDraft::parse(&json!({
            "date": "2026-03-31", "amount": "10.5", "currency": "eur", "reference": "INV-1"
        }))
        .unwrap();
        assert_eq!(draft.currency, "EUR");
        assert_eq!(draft.amount.to_string(), "10.50");
    }

    #[test]
    fn the_rule_summary_keeps_two_years() {
        let totals = |year, currency: &str, total: &str, orders| YearTotals {
            customer_id: "c1".into(),
            year,
            currency: currency.into(),
            months: [Amount::ZERO; 12],
            total: Amount::parse(&json!(total)).unwrap(),
            orders,
        };
        let summary = SalesSummary::from_totals(
            2026,
            &[
                totals(2026, "EUR", "10.00", 2),
                totals(2026, "USD", "5.00", 1),
                totals(2025, "EUR", "1.00", 1),
                totals(2024, "EUR", "99.00", 9),
            ],
        );
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            json!({
                "this_year": {"year": 2026, "orders": 3, "totals": {"EUR": "10.00", "USD": "5.00"}},
                "last_year": {"year": 2025, "orders": 1, "totals": {"EUR": "1.00"}},
            })
        );
    }
}
