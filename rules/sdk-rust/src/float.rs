//! Decimal text to `f64`, correctly rounded (round half to even), as
//! `str::parse::<f64>` does, in a fraction of its code: core's parser brings about 5 KB
//! of code and a 10 KB table of powers of five into the module.
//!
//! Numbers of up to 19 significant digits with a decimal exponent of at most 22 either
//! way (every decimal field a rule sees in practice) take the fast path: one exact
//! conversion and one correctly rounded multiplication or division. Anything else is
//! computed exactly with big integers: the 55 leading bits of the quotient and whether
//! anything is left, which is all rounding needs.

use alloc::vec::Vec;
use core::cmp::Ordering;

/// Significant digits kept. A halfway point between two doubles has at most 767
/// significant digits, so when the digits beyond these are not all zero, the value is
/// above the halfway point whenever the kept digits equal it.
const MAX_DIGITS: usize = 800;

/// Parses `[-+]?digits[.digits][(e|E)[-+]?digits]`, text the caller has checked to
/// have that shape. Too large a value gives an infinity, too small a zero.
pub(crate) fn parse(text: &str) -> f64 {
    quick(text.as_bytes()).unwrap_or_else(|| slow(text.as_bytes()))
}

/// Powers of ten that `f64` holds exactly.
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `[-+]digits[.digits]` with at most 15 digits in all (so the digits fit `f64`
/// exactly) and no exponent: what decimal fields look like. One exact conversion and
/// one correctly rounded division, with no digit buffer: the common case costs a rule
/// a few dozen instructions instead of a heap vector (`rules/README.md`, the Rust SDK).
/// `None` for anything else.
fn quick(bytes: &[u8]) -> Option<f64> {
    let (negative, text) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    let mut whole: u64 = 0;
    let mut count = 0;
    let mut scale = None;
    for &byte in text {
        match byte {
            b'0'..=b'9' if count < 15 => {
                whole = whole * 10 + u64::from(byte - b'0');
                count += 1;
                scale = scale.map(|digits| digits + 1);
            }
            b'.' if scale.is_none() => scale = Some(0),
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let magnitude = whole as f64 / POWERS[scale.unwrap_or(0)];
    Some(if negative { -magnitude } else { magnitude })
}

/// Any other number: the digits are kept (up to [`MAX_DIGITS`]) for the exact paths.
fn slow(bytes: &[u8]) -> f64 {
    let mut at = 0;
    let negative = bytes.first() == Some(&b'-');
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        at = 1;
    }
    // The significant digits (leading zeros dropped), the decimal exponent of the last
    // one kept, and whether a non-zero digit was dropped beyond MAX_DIGITS.
    let mut digits: Vec<u8> = Vec::new();
    let mut exponent: i64 = 0;
    let mut truncated = false;
    let mut fraction = false;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'0'..=b'9' => {
                if digits.len() < MAX_DIGITS {
                    if byte != b'0' || !digits.is_empty() {
                        digits.push(byte - b'0');
                    }
                    if fraction {
                        exponent -= 1;
                    }
                } else {
                    truncated |= byte != b'0';
                    if !fraction {
                        exponent += 1;
                    }
                }
            }
            b'.' => fraction = true,
            _ => break,
        }
        at += 1;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        let minus = bytes.get(at) == Some(&b'-');
        if matches!(bytes.get(at), Some(b'-' | b'+')) {
            at += 1;
        }
        let mut power: i64 = 0;
        while let Some(&byte @ b'0'..=b'9') = bytes.get(at) {
            // Saturates long before overflowing: anything this large is out of range.
            power = (power * 10 + i64::from(byte - b'0')).min(1 << 40);
            at += 1;
        }
        exponent += if minus { -power } else { power };
    }
    let magnitude = magnitude(&digits, exponent, truncated);
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// `digits × 10^exponent` (plus a little when `truncated`), correctly rounded.
fn magnitude(digits: &[u8], exponent: i64, truncated: bool) -> f64 {
    if digits.is_empty() {
        return 0.0;
    }
    let count = digits.len() as i64;
    // The value is at least 10^(count + exponent - 1) and below 10^(count + exponent).
    if count + exponent - 1 > 309 {
        return f64::INFINITY;
    }
    if count + exponent < -324 {
        return 0.0;
    }
    if count <= 19 && !truncated && (-22..=22).contains(&exponent) {
        let whole = digits
            .iter()
            .fold(0u64, |whole, &digit| whole * 10 + u64::from(digit));
        if whole <= 1 << 53 {
            let power = POWERS[exponent.unsigned_abs() as usize];
            return if exponent < 0 {
                whole as f64 / power
            } else {
                whole as f64 * power
            };
        }
    }
    exact(digits, exponent, truncated)
}

/// The slow path: `numerator / denominator` with big integers.
fn exact(digits: &[u8], exponent: i64, truncated: bool) -> f64 {
    let mut numerator = Big::from_digits(digits);
    let mut denominator = Big::one();
    if exponent >= 0 {
        numerator.mul_pow10(exponent as u32);
    } else {
        denominator.mul_pow10(exponent.unsigned_abs() as u32);
    }
    // value = numerator / denominator = q × 2^k + rest, with q of 54 or 55 bits.
    let mut k = numerator.bits() as i64 - denominator.bits() as i64 - 54;
    if k >= 0 {
        denominator.shl(k as u32);
    } else {
        numerator.shl(k.unsigned_abs() as u32);
    }
    let mut q: u64 = 0;
    for bit in (0..56).rev() {
        let mut shifted = denominator.clone();
        shifted.shl(bit);
        if numerator.cmp(&shifted) != Ordering::Less {
            numerator.sub(&shifted);
            q |= 1 << bit;
        }
    }
    let mut sticky = truncated || !numerator.is_zero();
    // Keep 54 bits (53 and a rounding bit), or fewer below the normal range, where the
    // exponent of the last kept bit cannot go below -1075.
    let mut shift = 0;
    while q >> shift >= 1 << 54 {
        shift += 1;
    }
    if k + shift < -1075 {
        shift = (-1075 - k).min(63);
    }
    sticky |= q & ((1 << shift) - 1) != 0;
    q >>= shift;
    k += i64::from(shift);
    // Round half to even: q is the mantissa and one rounding bit.
    let mut mantissa = q >> 1;
    if q & 1 == 1 && (sticky || mantissa & 1 == 1) {
        mantissa += 1;
    }
    // value ≈ mantissa × 2^(k + 1)
    let mut power = k + 1;
    if mantissa == 1 << 53 {
        mantissa >>= 1;
        power += 1;
    }
    if mantissa < 1 << 52 {
        // Subnormal (power is -1074) or zero.
        return f64::from_bits(mantissa);
    }
    let biased = power + 1075;
    if biased >= 2047 {
        return f64::INFINITY;
    }
    f64::from_bits(((biased as u64) << 52) | (mantissa & ((1 << 52) - 1)))
}

/// An unsigned big integer, 32-bit limbs, least significant first, no leading zeros.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn one() -> Self {
        Big(alloc::vec![1])
    }

    fn from_digits(digits: &[u8]) -> Self {
        let mut big = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let value = chunk
                .iter()
                .fold(0u32, |value, &digit| value * 10 + u32::from(digit));
            big.mul_add(10u32.pow(chunk.len() as u32), value);
        }
        big
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    /// self = self × factor + add.
    fn mul_add(&mut self, factor: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in self.0.iter_mut() {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut power: u32) {
        while power >= 9 {
            self.mul_add(1_000_000_000, 0);
            power -= 9;
        }
        self.mul_add(10u32.pow(power), 0);
    }

    fn bits(&self) -> u32 {
        match self.0.last() {
            Some(&top) => self.0.len() as u32 * 32 - top.leading_zeros(),
            None => 0,
        }
    }

    fn shl(&mut self, bits: u32) {
        if self.is_zero() {
            return;
        }
        let (limbs, bits) = ((bits / 32) as usize, bits % 32);
        if bits != 0 {
            let mut carry = 0;
            for limb in self.0.iter_mut() {
                let next = *limb >> (32 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs != 0 {
            self.0.splice(0..0, core::iter::repeat(0).take(limbs));
        }
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// self -= other; other must not be larger.
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0u64;
        for (index, limb) in self.0.iter_mut().enumerate() {
            let subtract = u64::from(other.0.get(index).copied().unwrap_or(0)) + borrow;
            let (value, under) = u64::from(*limb).overflowing_sub(subtract);
            *limb = value as u32;
            borrow = u64::from(under || value > u64::from(u32::MAX));
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn check(text: &str) {
        let expected: f64 = text.parse().unwrap();
        let found = parse(text);
        assert_eq!(
            found.to_bits(),
            expected.to_bits(),
            "{}: {} against {}",
            text,
            found,
            expected
        );
    }

    #[test]
    fn the_quick_path_agrees_with_core_on_decimals() {
        let mut random: u64 = 1;
        for step in 0..2000u64 {
            // As many digit strings of each length from 1 to 16 (16 is past the quick
            // path), with the dot at every place.
            random = random
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let length = 1 + (step % 16) as u32;
            let digits = (random % 10u64.pow(length)).to_string();
            for dot in 1..digits.len() {
                let (whole, fraction) = digits.split_at(dot);
                check(&format!("{}.{}", whole, fraction));
                check(&format!("-{}.{}", whole, fraction));
            }
            check(&digits);
            check(&format!("-{}", digits));
        }
    }

    #[test]
    fn agrees_with_core_on_hard_and_edge_cases() {
        for text in [
            "0",
            "-0",
            "+0",
            "0.000",
            "1",
            "12500.50",
            "-2.5e3",
            "1e+21",
            "1E21",
            "1e22",
            "1e23",
            "9007199254740993",
            "9007199254740992",
            "18014398509481985",
            "10000.0000000000000001",
            "99999.99",
            "100000.00",
            "0.1",
            "0.3",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1e-324",
            "1e-400",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "1e308",
            "1e309",
            "1e400",
            "123456789012345678901234567890",
            "0.0000001",
            "7.2057594037927933e16",
            "5e-324",
            "3e-324",
            "1e-323",
            "8.98846567431158e307",
            "2.225073858507201136057409796709131975934819546351645648e-308",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "1.00000000000000011102230246251565404236316680908203126",
            "1e99999999999999",
            "1e-99999999999999",
            "0e999999",
        ] {
            check(text);
        }
        // More digits than kept, with the deciding digit beyond them.
        let halfway = "1.00000000000000011102230246251565404236316680908203125";
        let long = format!("{}{}", halfway, "0".repeat(900));
        check(&long);
        check(&format!("{}1", long));
        check(&format!("{}e-5", "9".repeat(1000)));
    }

    #[test]
    fn agrees_with_core_on_many_generated_numbers() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..20_000 {
            let mut text = String::new();
            if next(2) == 0 {
                text.push('-');
            }
            let whole = 1 + next(25);
            for index in 0..whole {
                let digit = if index == 0 { 1 + next(9) } else { next(10) };
                text.push(char::from(b'0' + digit as u8));
            }
            if next(2) == 0 {
                text.push('.');
                for _ in 0..1 + next(25) {
                    text.push(char::from(b'0' + next(10) as u8));
                }
            }
            if next(3) == 0 {
                text.push('e');
                let power = next(700) as i64 - 350;
                text.push_str(&power.to_string());
            }
            check(&text);
        }
    }
}
