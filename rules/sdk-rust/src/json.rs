//! A strict JSON reader that borrows from the input.
//!
//! A rule reads one small document per run, so what matters is work per byte and per
//! allocation, not features: strings without escapes and numbers are slices of the
//! input (nothing copied, numbers parsed only when asked for), objects are vectors of
//! pairs (a rule looks up a handful of keys), and there is no serde in the module.
//! Grammar as RFC 8259; nesting is capped so a hostile input cannot overflow the
//! rule's small stack.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Deepest nesting of arrays and objects accepted (serde_json's default too).
pub const MAX_DEPTH: usize = 128;

/// A JSON value read from the input; strings borrow from it where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number<'a>),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// A JSON number as written in the input, checked against the JSON grammar and
/// converted only when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number<'a>(&'a str);

/// A JSON object: its members in input order. When a key repeats, the last one counts
/// (as in serde_json and JavaScript).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Value<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    /// A number as `f64`; `None` for other values and numbers beyond `f64`'s range.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(number) => number.as_f64(),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Writes the value back as compact JSON (for log lines and for echoing a value into
/// the output).
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        crate::output::write_value(&mut text, self);
        f.write_str(&text)
    }
}

impl<'a> Number<'a> {
    /// The number as written, e.g. `"12500.50"` or `"1e3"`.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// `None` when the number is beyond `f64`'s range (e.g. `1e400`).
    pub fn as_f64(&self) -> Option<f64> {
        Some(crate::float::parse(self.0)).filter(|value| value.is_finite())
    }

    /// `Some` for integers written without fraction or exponent that fit.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// `Some` for non-negative integers written without fraction or exponent that fit.
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for Number<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl<'a> Object<'a> {
    /// The value of `key`; the last one when the key repeats.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.members
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// Members in input order, repeated keys included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.members.iter().map(|(name, value)| (&**name, value))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Where and why a document is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset of the problem.
    pub offset: usize,
    pub problem: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.problem, self.offset)
    }
}

/// Parses one JSON document (surrounding whitespace allowed, nothing else).
pub fn parse(text: &str) -> Result<Value<'_>, SyntaxError> {
    let mut reader = Reader::new(text);
    let value = reader.value(0)?;
    reader.finish()?;
    Ok(value)
}

/// Reads a document front to back. Besides whole values, it reads an object member
/// by member ([`Reader::members`]), so the input's known keys are read straight into
/// their typed fields without an intermediate tree.
pub(crate) struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    /// Succeeds when only whitespace is left.
    pub(crate) fn finish(&mut self) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.at < self.bytes.len() {
            return Err(self.error("unexpected text after the document"));
        }
        Ok(())
    }

    /// Reads an object, calling `member` with each key and the reader positioned at its
    /// value, which `member` must read. Returns false (having read the value) when the
    /// value is not an object.
    pub(crate) fn members<E: From<SyntaxError>>(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.skip_whitespace();
        if self.peek() != Some(b'{') {
            self.value(depth)?;
            return Ok(false);
        }
        if depth + 1 > MAX_DEPTH {
            return Err(self.error("nested too deeply").into());
        }
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(true);
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            if self.next_member(b'}')? {
                return Ok(true);
            }
        }
    }

    /// After a member or item: true at the closing `close`, false after a `,`.
    fn next_member(&mut self, close: u8) -> Result<bool, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.at += 1;
                Ok(true)
            }
            _ if close == b'}' => Err(self.error("expected `,` or `}`")),
            _ => Err(self.error("expected `,` or `]`")),
        }
    }

    /// A member's key and the `:` after it.
    fn key(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        let key = self.string()?;
        self.expect(b':', "expected `:`")?;
        Ok(key)
    }
    fn error(&self, problem: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.at,
            problem,
        }
    }

    /// The text from `start` to the current position. Both are always next to an ASCII
    /// byte the reader has just matched (a quote, a digit, a backslash), so they are
    /// on character boundaries and within the text.
    fn slice(&self, start: usize) -> &'a str {
        debug_assert!(self.text.is_char_boundary(start) && self.text.is_char_boundary(self.at));
        // SAFETY: see above; the debug assertion checks it in tests.
        unsafe { self.text.get_unchecked(start..self.at) }
    }

    /// The bytes not read yet.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or(&[])
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `expected` after optional whitespace.
    fn expect(&mut self, expected: u8, problem: &'static str) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(expected) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(problem))
        }
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Value<'a>, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => {
                let mut members = Vec::new();
                self.members(depth, |reader, key| {
                    members.push((key, reader.value(depth + 1)?));
                    Ok::<_, SyntaxError>(())
                })?;
                Ok(Value::Object(Object { members }))
            }
            Some(b'[') => self.array(depth + 1).map(Value::Array),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// Reads a value the caller does not need: checked like any other, nothing built.
    pub(crate) fn skip(&mut self, depth: usize) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => {
                self.members(depth, |reader, _| reader.skip(depth + 1))?;
            }
            Some(b'[') => {
                if depth + 1 > MAX_DEPTH {
                    return Err(self.error("nested too deeply"));
                }
                self.at += 1;
                self.skip_whitespace();
                if self.peek() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        self.skip(depth + 1)?;
                        if self.next_member(b']')? {
                            break;
                        }
                    }
                }
            }
            Some(b'"') => {
                self.string()?;
            }
            _ => {
                self.value(depth)?;
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static str, value: Value<'a>) -> Result<Value<'a>, SyntaxError> {
        if self.rest().starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Value<'a>>, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1; // `[`
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value(depth)?);
            if self.next_member(b']')? {
                return Ok(items);
            }
        }
    }

    /// Reads digits; false when there were none.
    fn digits(&mut self) -> bool {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at > start
    }

    fn number(&mut self) -> Result<Number<'a>, SyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.digits() {
                return Err(self.error("expected a digit"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.digits() {
                return Err(self.error("expected a digit"));
            }
        }
        Ok(Number(self.slice(start)))
    }

    /// Reads a string at `"`: a slice of the input when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.at += 1; // `"`
        let start = self.at;
        self.skip_plain_text();
        if self.peek() == Some(b'"') {
            let text = self.slice(start);
            self.at += 1;
            return Ok(Cow::Borrowed(text));
        }
        let mut owned = String::new();
        let mut run = start;
        loop {
            owned.push_str(self.slice(run));
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.at += 1;
                    owned.push(self.escape()?);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
            run = self.at;
            self.skip_plain_text();
        }
    }

    /// Moves to the next `"`, `\` or control character (or the end).
    ///
    /// Eight bytes at a time: most of an input is string text, and a few wasm
    /// instructions per byte were most of a rule's parsing cost. The word test is the
    /// classic "has a byte below n" bit trick: its lowest flagged byte is exactly the
    /// first byte that matches (bytes above it may be flagged wrongly, never below).
    fn skip_plain_text(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word;
        let bytes = self.bytes;
        let mut at = self.at;
        while let Some(chunk) = bytes.get(at..at + 8) {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            let found = (below(quote, 1) | below(backslash, 1) | below(word, 0x20)) & HIGH;
            if found != 0 {
                self.at = at + (found.trailing_zeros() / 8) as usize;
                return;
            }
            at += 8;
        }
        while let Some(&byte) = bytes.get(at) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            at += 1;
        }
        self.at = at;
    }

    /// Reads the escape after a `\`.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let byte = self
            .peek()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xd800..=0xdbff => {
                        if !self.rest().starts_with(b"\\u") {
                            return Err(self.error("lone surrogate in a \\u escape"));
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("lone surrogate in a \\u escape"));
                        }
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(self.error("lone surrogate in a \\u escape")),
                    _ => unit,
                };
                char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?
            }
            _ => {
                self.at -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        let mut code = 0;
        for &digit in digits {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            code = code * 16 + u32::from(value);
        }
        self.at += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_value() {
        let value = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d"}} "#).unwrap();
        let object = value.as_object().unwrap();
        let a = object.get("a").unwrap().as_array().unwrap();
        assert_eq!(a[0].as_f64(), Some(1.0));
        assert_eq!(a[1].as_f64(), Some(-2500.0));
        assert_eq!(a[2].as_bool(), Some(true));
        assert_eq!(a[3].as_bool(), Some(false));
        assert!(a[4].is_null());
        let b = object.get("b").unwrap().as_object().unwrap();
        assert_eq!(b.get("c").unwrap().as_str(), Some("d"));
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let value = parse(r#"["plain", "tab\tquote\" \u00e9 \ud83d\ude00 \/"]"#).unwrap();
        let items = value.as_array().unwrap();
        assert!(matches!(&items[0], Value::String(Cow::Borrowed("plain"))));
        assert_eq!(items[1].as_str(), Some("tab\tquote\" é 😀 /"));
    }

    #[test]
    fn strings_end_at_the_right_byte_wherever_it_falls_in_a_word() {
        for length in 0..24 {
            // Multi-byte characters too: the word scan must not stop inside one.
            let text: String = "aé".chars().cycle().take(length).collect();
            let plain = format!(r#"["{}"]"#, text);
            assert_eq!(
                parse(&plain).unwrap().as_array().unwrap()[0].as_str(),
                Some(&*text)
            );
            let escaped = format!(r#"["{}\n{}"]"#, text, text);
            let expected = format!("{}\n{}", text, text);
            let value = parse(&escaped).unwrap();
            assert_eq!(value.as_array().unwrap()[0].as_str(), Some(&*expected));
            let control = format!("[\"{}\u{1f}\"]", text);
            assert_eq!(parse(&control).unwrap_err().offset, 2 + text.len());
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_counts() {
        let value = parse(r#"{"k": 1, "k": 2}"#).unwrap();
        assert_eq!(
            value.as_object().unwrap().get("k").unwrap().as_f64(),
            Some(2.0)
        );
    }

    #[test]
    fn refuses_what_json_does_not_allow() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            ".5",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"a\u{1}\"",
            "\"open",
            "{} {}",
            "[1] x",
            "'a'",
            "NaN",
            "{1: 2}",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep).unwrap_err().problem, "nested too deeply");
    }

    #[test]
    fn numbers_keep_their_text_and_convert_on_demand() {
        let value = parse("[12500.50, 1e400, 42, -7]").unwrap();
        let items = value.as_array().unwrap();
        let number = |index: usize| match items[index] {
            Value::Number(number) => number,
            ref other => panic!("not a number: {:?}", other),
        };
        assert_eq!(number(0).as_str(), "12500.50");
        assert_eq!(number(1).as_f64(), None);
        assert_eq!(
            (number(2).as_i64(), number(2).as_u64()),
            (Some(42), Some(42))
        );
        assert_eq!((number(3).as_i64(), number(3).as_u64()), (Some(-7), None));
    }
}
