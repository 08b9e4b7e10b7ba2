//! The rule's input (ABI v1), typed, borrowing its strings from the bytes read.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::json::{Object, Reader, SyntaxError, Value};
use crate::ABI_VERSION;

/// Everything the host tells the rule. Unknown keys are ignored, so rules built
/// against v1 keep working when the host adds data.
#[derive(Debug, Clone, PartialEq)]
pub struct Input<'a> {
    pub abi: u64,
    pub customer: Customer<'a>,
    /// The tenant's active segments a rule may assign.
    pub segments: Vec<SegmentRef<'a>>,
    /// The customer's recorded sales of this year and last year (`this_year` and
    /// `last_year`, each with `year`, `orders` and `totals` by currency as decimal
    /// strings); `Value::Null` from a host that sends none.
    pub sales: Value<'a>,
    pub rule: RuleInfo<'a>,
}

/// The customer being evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer<'a> {
    pub id: Cow<'a, str>,
    pub email: Cow<'a, str>,
    pub first_name: Option<Cow<'a, str>>,
    pub last_name: Option<Cow<'a, str>>,
    /// Tax id or other official document number.
    pub document: Option<Cow<'a, str>>,
    pub phone: Option<Cow<'a, str>>,
    /// The segment the customer is in now, if any.
    pub segment: Option<SegmentRef<'a>>,
    /// The tenant's custom fields, keyed by field name.
    pub fields: Object<'a>,
}

/// A segment as the host names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef<'a> {
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
}

/// Which rule is running; handy in log lines.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo<'a> {
    pub name: Cow<'a, str>,
    /// The version number (`null` when the host sends none).
    pub version: Value<'a>,
}

/// Why stdin is not a valid ABI v1 input (the rule exits with status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    NotUtf8,
    Syntax(SyntaxError),
    /// A key the ABI requires is missing, or has the wrong type.
    Shape {
        key: &'static str,
        expected: &'static str,
    },
    WrongAbi(u64),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::NotUtf8 => f.write_str("invalid rule input: not UTF-8"),
            InputError::Syntax(error) => write!(f, "invalid rule input: {}", error),
            InputError::Shape { key, expected } => {
                write!(f, "invalid rule input: `{}` must be {}", key, expected)
            }
            InputError::WrongAbi(abi) => write!(
                f,
                "rule input has abi {}; this rule was built for abi {}",
                abi, ABI_VERSION
            ),
        }
    }
}

#[cfg(not(target_os = "wasi"))]
impl std::error::Error for InputError {}

/// Parses an input document; useful for unit-testing a rule natively.
///
/// The document is read once, front to back, straight into the typed fields. A key
/// with the wrong type does not stop the reading: the version is checked first (a
/// newer host's input may not have v1's shape at all), then the first such key is
/// reported.
pub fn parse_input(bytes: &[u8]) -> Result<Input<'_>, InputError> {
    let text = core::str::from_utf8(bytes).map_err(|_| InputError::NotUtf8)?;
    let mut reader = Reader::new(text);
    let mut shape = Shape::default();
    let mut abi = None;
    let mut customer = None;
    let mut segments = Vec::new();
    let mut sales = Value::Null;
    let mut rule = None;
    let is_object = reader.members(0, |reader, key| {
        match &*key {
            "abi" => match reader.value(1)? {
                Value::Number(number) if number.as_u64().is_some() => abi = number.as_u64(),
                _ => shape.wrong("abi", "a whole number"),
            },
            "customer" => customer = read_customer(reader, &mut shape)?,
            "segments" => match reader.value(1)? {
                Value::Null => segments.clear(),
                Value::Array(items) => {
                    segments.clear();
                    for item in items {
                        if let Some(segment) = segment_ref(item, "segments[]", &mut shape) {
                            segments.push(segment);
                        }
                    }
                }
                _ => shape.wrong("segments", "an array"),
            },
            "rule" => rule = read_rule(reader, &mut shape)?,
            "sales" => sales = reader.value(1)?,
            _ => reader.skip(1)?,
        }
        Ok::<_, SyntaxError>(())
    });
    let is_object = is_object.map_err(InputError::Syntax)?;
    reader.finish().map_err(InputError::Syntax)?;
    if !is_object {
        return Err(InputError::Shape {
            key: "the input",
            expected: "an object",
        });
    }
    let abi = match abi {
        Some(abi) if abi == ABI_VERSION => abi,
        Some(abi) => return Err(InputError::WrongAbi(abi)),
        None => return Err(shape.first_or("abi", "a whole number")),
    };
    match (customer, rule, shape.first) {
        (_, _, Some(error)) => Err(error),
        (None, _, None) => Err(missing("customer")),
        (_, None, None) => Err(missing("rule")),
        (Some(customer), Some(rule), None) => Ok(Input {
            abi,
            customer,
            segments,
            sales,
            rule,
        }),
    }
}

/// The first key found with the wrong type.
#[derive(Default)]
struct Shape {
    first: Option<InputError>,
}

impl Shape {
    fn wrong(&mut self, key: &'static str, expected: &'static str) {
        if self.first.is_none() {
            self.first = Some(InputError::Shape { key, expected });
        }
    }

    fn first_or(self, key: &'static str, expected: &'static str) -> InputError {
        self.first.unwrap_or(InputError::Shape { key, expected })
    }
}

fn missing(key: &'static str) -> InputError {
    InputError::Shape {
        key,
        expected: "present",
    }
}

/// A string member, `None` when `null`; any other value is noted as a wrong type.
fn text<'a>(value: Value<'a>, key: &'static str, shape: &mut Shape) -> Option<Cow<'a, str>> {
    match value {
        Value::String(text) => Some(text),
        Value::Null => None,
        _ => {
            shape.wrong(key, "a string");
            None
        }
    }
}

/// Reads the object member `key` of the input member by member ([`Reader::members`]);
/// when it is not an object, notes that and returns false.
fn members<'a>(
    reader: &mut Reader<'a>,
    key: &'static str,
    shape: &mut Shape,
    mut member: impl FnMut(&mut Reader<'a>, &mut Shape, Cow<'a, str>) -> Result<(), SyntaxError>,
) -> Result<bool, SyntaxError> {
    let is_object = reader.members(1, |reader, name| member(reader, shape, name))?;
    if !is_object {
        shape.wrong(key, "an object");
    }
    Ok(is_object)
}

fn read_customer<'a>(
    reader: &mut Reader<'a>,
    shape: &mut Shape,
) -> Result<Option<Customer<'a>>, SyntaxError> {
    let mut id = None;
    let mut customer = Customer {
        id: Cow::Borrowed(""),
        email: Cow::Borrowed(""),
        first_name: None,
        last_name: None,
        document: None,
        phone: None,
        segment: None,
        fields: Object::default(),
    };
    let is_object = members(reader, "customer", shape, |reader, shape, key| {
        match &*key {
            "id" => id = text(reader.value(2)?, "customer.id", shape),
            "email" => {
                customer.email = text(reader.value(2)?, "customer.email", shape).unwrap_or_default()
            }
            "first_name" => {
                customer.first_name = text(reader.value(2)?, "customer.first_name", shape)
            }
            "last_name" => customer.last_name = text(reader.value(2)?, "customer.last_name", shape),
            "document" => customer.document = text(reader.value(2)?, "customer.document", shape),
            "phone" => customer.phone = text(reader.value(2)?, "customer.phone", shape),
            "segment" => {
                customer.segment = match reader.value(2)? {
                    Value::Null => None,
                    value => segment_ref(value, "customer.segment", shape),
                }
            }
            "fields" => match reader.value(2)? {
                Value::Object(fields) => customer.fields = fields,
                Value::Null => customer.fields = Object::default(),
                _ => shape.wrong("customer.fields", "an object"),
            },
            _ => reader.skip(2)?,
        }
        Ok(())
    })?;
    if !is_object {
        return Ok(None);
    }
    match id {
        Some(id) => customer.id = id,
        None => shape.wrong("customer.id", "a string"),
    }
    Ok(Some(customer))
}

fn read_rule<'a>(
    reader: &mut Reader<'a>,
    shape: &mut Shape,
) -> Result<Option<RuleInfo<'a>>, SyntaxError> {
    let mut name = None;
    let mut version = Value::Null;
    let is_object = members(reader, "rule", shape, |reader, shape, key| {
        match &*key {
            "name" => name = text(reader.value(2)?, "rule.name", shape),
            "version" => version = reader.value(2)?,
            _ => reader.skip(2)?,
        }
        Ok(())
    })?;
    if !is_object {
        return Ok(None);
    }
    match name {
        Some(name) => Ok(Some(RuleInfo { name, version })),
        None => {
            shape.wrong("rule.name", "a string");
            Ok(None)
        }
    }
}

fn segment_ref<'a>(
    value: Value<'a>,
    key: &'static str,
    shape: &mut Shape,
) -> Option<SegmentRef<'a>> {
    let object = match value {
        Value::Object(object) => object,
        _ => {
            shape.wrong(key, "an object with `id` and `name`");
            return None;
        }
    };
    match (object.get("id"), object.get("name")) {
        (Some(Value::String(id)), Some(Value::String(name))) => Some(SegmentRef {
            id: id.clone(),
            name: name.clone(),
        }),
        _ => {
            shape.wrong(key, "an object with `id` and `name`");
            None
        }
    }
}

/// Why a custom field could not be read as asked (a rule usually passes it on with `?`,
/// which fails the run with status 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    /// The field's value as JSON, for the log.
    pub found: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` is not a number: {}", self.field, self.found)
    }
}

#[cfg(not(target_os = "wasi"))]
impl std::error::Error for FieldError {}

/// So that `customer.number(..)?` works in a rule returning `Result<_, String>`.
impl From<FieldError> for String {
    fn from(error: FieldError) -> Self {
        error.to_string()
    }
}

impl<'a> Customer<'a> {
    /// A custom field's raw value; `None` when absent or `null`.
    pub fn field(&self, name: &str) -> Option<&Value<'a>> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    /// A text field; `None` when absent, `null` or not a string.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }

    /// A boolean field; `None` when absent, `null` or not a boolean.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.field(name).and_then(Value::as_bool)
    }

    /// A numeric field given as a JSON number or a decimal string such as `"12500.50"`
    /// (decimal fields travel as strings). `Ok(None)` when absent or `null`; an error
    /// when present but not a finite number.
    pub fn number(&self, name: &str) -> Result<Option<f64>, FieldError> {
        let value = match self.field(name) {
            None => return Ok(None),
            Some(value) => value,
        };
        let number = match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => parse_decimal(text),
            _ => None,
        };
        number.map(Some).ok_or_else(|| FieldError {
            field: name.to_string(),
            found: value.to_string(),
        })
    }
}

/// Parses `[-+]digits[.digits]`, the shape of decimal field values. Stricter than
/// `str::parse::<f64>`, which would also accept `inf` and `1e9`.
fn parse_decimal(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let shape = match unsigned.iter().position(|&byte| byte == b'.') {
        Some(dot) => {
            let (whole, fraction) = unsigned.split_at(dot);
            digits(whole) && fraction.get(1..).map_or(false, digits)
        }
        None => digits(unsigned),
    };
    if shape {
        Some(crate::float::parse(text))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = r#"{
        "abi": 1,
        "customer": {"id": "c1", "email": "a@b.c", "first_name": "Ada", "segment": null,
                     "fields": {"a": 12, "b": "12500.50", "c": "1e9", "d": null, "e": true,
                                "t": "retail", "big": 1e400}},
        "segments": [{"id": "s1", "name": "AA"}],
        "sales": {"this_year": {"year": 2026, "orders": 3, "totals": {"EUR": "10500.00"}}},
        "rule": {"name": "t", "version": 1},
        "future_key": {"ignored": [true]}
    }"#;

    #[test]
    fn reads_the_abi_v1_input() {
        let input = parse_input(INPUT.as_bytes()).unwrap();
        assert_eq!(input.customer.id, "c1");
        assert_eq!(input.customer.email, "a@b.c");
        assert_eq!(input.customer.first_name.as_deref(), Some("Ada"));
        assert_eq!(input.customer.last_name, None);
        assert_eq!(input.customer.segment, None);
        assert_eq!(input.segments[0].name, "AA");
        assert_eq!(input.rule.name, "t");
        assert_eq!(input.rule.version.to_string(), "1");
        let this_year = input.sales.as_object().unwrap().get("this_year").unwrap();
        let totals = this_year.as_object().unwrap().get("totals").unwrap();
        assert_eq!(
            totals.as_object().unwrap().get("EUR").unwrap().as_str(),
            Some("10500.00")
        );
        let without_sales = br#"{"abi": 1, "customer": {"id": "c"}, "rule": {"name": "t"}}"#;
        assert!(parse_input(without_sales).unwrap().sales.is_null());
    }

    #[test]
    fn numbers_come_from_numbers_and_decimal_strings() {
        let input = parse_input(INPUT.as_bytes()).unwrap();
        let c = &input.customer;
        assert_eq!(c.number("a"), Ok(Some(12.0)));
        assert_eq!(c.number("b"), Ok(Some(12500.5)));
        assert_eq!(
            c.number("c").unwrap_err().to_string(),
            "field `c` is not a number: \"1e9\""
        );
        assert!(c.number("big").is_err());
        assert!(c.number("e").is_err());
        assert_eq!(c.number("d"), Ok(None));
        assert_eq!(c.number("missing"), Ok(None));
        assert_eq!(c.text("t"), Some("retail"));
        assert_eq!(c.flag("e"), Some(true));
        assert_eq!(c.flag("t"), None);
        assert!(c.field("d").is_none());
    }

    #[test]
    fn wrong_abi_is_rejected_before_the_shape_is_checked() {
        let error = parse_input(br#"{"abi": 2, "something": "else"}"#).unwrap_err();
        assert_eq!(error, InputError::WrongAbi(2));
        assert!(error.to_string().contains("abi 2"));
    }

    #[test]
    fn a_bad_shape_names_the_key() {
        for (input, key) in [
            (r#"{"abi": 1, "rule": {"name": "t"}}"#, "customer"),
            (
                r#"{"abi": 1, "customer": {"id": 5}, "rule": {"name": "t"}}"#,
                "customer.id",
            ),
            (
                r#"{"abi": 1, "customer": {"id": "c", "fields": []}, "rule": {"name": "t"}}"#,
                "customer.fields",
            ),
            (
                r#"{"abi": 1, "customer": {"id": "c"}, "segments": [{"id": "s"}], "rule": {"name": "t"}}"#,
                "segments[]",
            ),
            (
                r#"{"abi": 1, "customer": {"id": "c"}, "rule": {}}"#,
                "rule.name",
            ),
            (r#"{"abi": "1"}"#, "abi"),
        ] {
            match parse_input(input.as_bytes()) {
                Err(InputError::Shape { key: found, .. }) => assert_eq!(found, key, "{}", input),
                other => panic!("{}: {:?}", input, other),
            }
        }
        assert_eq!(parse_input(b"\xff"), Err(InputError::NotUtf8));
        assert!(matches!(parse_input(b"{"), Err(InputError::Syntax(_))));
    }
}
