//! The rule's log (stderr): one line per call, written with one host call.
//!
//! [`log!`](crate::log!) joins its pieces with plain string pushes. `core::fmt`
//! (`format_args!`, [`log`] with a [`Display`]) calls each argument's formatter
//! through a function pointer, and wasmtime fills a module's function table lazily:
//! every formatter a run calls for the first time is a call out to the host. For the
//! tier example that was about 1 µs of a 10 µs evaluation (`rules/README.md`).

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt::{Display, Write as _};

use crate::json::{Number, Value};

/// Something [`log!`](crate::log!) can write: text as it is, integers in decimal, a
/// boolean as `true`/`false`, an input [`Value`] as the input spelled it (a string's
/// text without quotes, anything else as JSON) and `None` as `null`. Floats are not
/// pieces (formatting one would add about 25 KB to the module): log the input's text
/// of a number instead.
pub trait LogPiece {
    /// Appends the piece to `line`.
    fn write_log(&self, line: &mut String);
}

/// Writes one log line from pieces, each a [`LogPiece`], without `core::fmt`:
///
/// ```ignore
/// segmentation_rule::log!("customer ", input.customer.id, " -> tier ", tier);
/// ```
#[macro_export]
macro_rules! log {
    ($($piece:expr),+ $(,)?) => {{
        let mut line = $crate::alloc_string();
        $( $crate::LogPiece::write_log(&$piece, &mut line); )+
        $crate::write_log_line(line);
    }};
}

/// Writes one log line (stderr) from anything [`Display`]. Handy for messages built
/// with `format_args!`; [`log!`](crate::log!) is the cheaper way (see the module
/// docs). Logging never fails the rule; beyond the host's log limit lines are dropped.
pub fn log(message: impl Display) {
    let mut line = alloc_string();
    let _ = write!(line, "{}", message);
    write_log_line(line);
}

/// The buffer [`log!`](crate::log!) starts a line in (public for the macro).
#[doc(hidden)]
pub fn alloc_string() -> String {
    String::with_capacity(128)
}

/// Ends `line` and writes it to stderr in one host call (public for the macro).
#[doc(hidden)]
pub fn write_log_line(mut line: String) {
    line.push('\n');
    let _ = crate::io::write_all(2, line.as_bytes());
}

impl LogPiece for str {
    fn write_log(&self, line: &mut String) {
        line.push_str(self);
    }
}

impl LogPiece for String {
    fn write_log(&self, line: &mut String) {
        line.push_str(self);
    }
}

impl LogPiece for Cow<'_, str> {
    fn write_log(&self, line: &mut String) {
        line.push_str(self);
    }
}

impl LogPiece for bool {
    fn write_log(&self, line: &mut String) {
        line.push_str(if *self { "true" } else { "false" });
    }
}

impl LogPiece for Number<'_> {
    fn write_log(&self, line: &mut String) {
        line.push_str(self.as_str());
    }
}

impl LogPiece for Value<'_> {
    fn write_log(&self, line: &mut String) {
        match self {
            Value::String(text) => line.push_str(text),
            other => crate::output::write_value(line, other),
        }
    }
}

impl<T: LogPiece + ?Sized> LogPiece for &T {
    fn write_log(&self, line: &mut String) {
        (**self).write_log(line);
    }
}

impl<T: LogPiece> LogPiece for Option<T> {
    fn write_log(&self, line: &mut String) {
        match self {
            Some(piece) => piece.write_log(line),
            None => line.push_str("null"),
        }
    }
}

macro_rules! unsigned_pieces {
    ($($integer:ty),*) => {$(
        impl LogPiece for $integer {
            fn write_log(&self, line: &mut String) {
                let mut digits = [0; 20];
                line.push_str(crate::decimal(*self as u64, &mut digits));
            }
        }
    )*};
}
unsigned_pieces!(u8, u16, u32, u64, usize);

macro_rules! signed_pieces {
    ($($integer:ty),*) => {$(
        impl LogPiece for $integer {
            fn write_log(&self, line: &mut String) {
                if *self < 0 {
                    line.push('-');
                }
                let mut digits = [0; 20];
                line.push_str(crate::decimal((*self as i64).unsigned_abs(), &mut digits));
            }
        }
    )*};
}
signed_pieces!(i8, i16, i32, i64, isize);

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pieces: &[&dyn LogPiece]) -> String {
        let mut line = String::new();
        for piece in pieces {
            piece.write_log(&mut line);
        }
        line
    }

    #[test]
    fn pieces_are_written_as_a_reader_expects() {
        let input =
            crate::json::parse(r#"{"s": "12500.50", "n": 150000, "o": {"a": [true]}}"#).unwrap();
        let object = input.as_object().unwrap();
        let text = String::from("owned");
        let cow: Cow<'_, str> = Cow::Borrowed("cow");
        assert_eq!(
            line(&[
                &"a ",
                &text,
                &" ",
                &cow,
                &" ",
                &true,
                &" ",
                &u64::MAX,
                &" ",
                &i64::MIN
            ]),
            "a owned cow true 18446744073709551615 -9223372036854775808"
        );
        assert_eq!(
            line(&[
                &object.get("s"),
                &" ",
                &object.get("n"),
                &" ",
                &object.get("o"),
                &" ",
                &object.get("missing"),
                &" ",
                &-7i32,
                &" ",
                &0u8
            ]),
            r#"12500.50 150000 {"a":[true]} null -7 0"#
        );
    }
}
