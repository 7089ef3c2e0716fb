//! Physical units: SI prefixes, base and derived units, bounded unit algebra.
//!
//! A unit is a scale factor (exact where possible) and a dimension vector over
//! `[m, kg, s, A, K, mol, cd]`. Temperatures in °C and °F are affine: they only
//! compare with the same unit.

use super::number::Number;

/// A parsed unit expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Unit {
    /// Size of one of this unit in SI base units.
    pub factor: Number,
    /// Exponents of `[m, kg, s, A, K, mol, cd]`.
    pub dims: [i8; 7],
    /// `Some(id)` for an affine temperature scale (°C = 1, °F = 2).
    pub affine: Option<u8>,
}

/// Longest unit expression considered, in bytes.
const MAX_UNIT_LEN: usize = 64;

const fn d(m: i8, kg: i8, s: i8, a: i8, k: i8, mol: i8, cd: i8) -> [i8; 7] {
    [m, kg, s, a, k, mol, cd]
}

/// `(symbol, numerator, denominator, dims, prefixable)`.
const BASE: &[(&str, i128, i128, [i8; 7], bool)] = &[
    ("m", 1, 1, d(1, 0, 0, 0, 0, 0, 0), true),
    ("g", 1, 1000, d(0, 1, 0, 0, 0, 0, 0), true),
    ("s", 1, 1, d(0, 0, 1, 0, 0, 0, 0), true),
    ("sec", 1, 1, d(0, 0, 1, 0, 0, 0, 0), false),
    ("min", 60, 1, d(0, 0, 1, 0, 0, 0, 0), false),
    ("h", 3600, 1, d(0, 0, 1, 0, 0, 0, 0), false),
    ("hr", 3600, 1, d(0, 0, 1, 0, 0, 0, 0), false),
    ("day", 86400, 1, d(0, 0, 1, 0, 0, 0, 0), false),
    ("A", 1, 1, d(0, 0, 0, 1, 0, 0, 0), true),
    ("K", 1, 1, d(0, 0, 0, 0, 1, 0, 0), true),
    ("mol", 1, 1, d(0, 0, 0, 0, 0, 1, 0), true),
    ("cd", 1, 1, d(0, 0, 0, 0, 0, 0, 1), false),
    ("N", 1, 1, d(1, 1, -2, 0, 0, 0, 0), true),
    ("J", 1, 1, d(2, 1, -2, 0, 0, 0, 0), true),
    ("W", 1, 1, d(2, 1, -3, 0, 0, 0, 0), true),
    ("Pa", 1, 1, d(-1, 1, -2, 0, 0, 0, 0), true),
    ("V", 1, 1, d(2, 1, -3, -1, 0, 0, 0), true),
    ("\\Omega", 1, 1, d(2, 1, -3, -2, 0, 0, 0), true),
    ("ohm", 1, 1, d(2, 1, -3, -2, 0, 0, 0), true),
    ("Hz", 1, 1, d(0, 0, -1, 0, 0, 0, 0), true),
    ("C", 1, 1, d(0, 0, 1, 1, 0, 0, 0), true),
    ("F", 1, 1, d(-2, -1, 4, 2, 0, 0, 0), true),
    ("T", 1, 1, d(0, 1, -2, -1, 0, 0, 0), true),
    ("H", 1, 1, d(2, 1, -2, -2, 0, 0, 0), true),
    ("Wb", 1, 1, d(2, 1, -2, -1, 0, 0, 0), true),
    ("L", 1, 1000, d(3, 0, 0, 0, 0, 0, 0), true),
    ("l", 1, 1000, d(3, 0, 0, 0, 0, 0, 0), false),
    (
        "eV",
        1_602_176_634,
        10_000_000_000_000_000_000_000_000_000,
        d(2, 1, -2, 0, 0, 0, 0),
        true,
    ),
    ("atm", 101_325, 1, d(-1, 1, -2, 0, 0, 0, 0), false),
    ("bar", 100_000, 1, d(-1, 1, -2, 0, 0, 0, 0), true),
    (
        "mmHg",
        133_322_387_415,
        1_000_000_000,
        d(-1, 1, -2, 0, 0, 0, 0),
        false,
    ),
    ("cal", 4184, 1000, d(2, 1, -2, 0, 0, 0, 0), true),
    ("rad", 1, 1, d(0, 0, 0, 0, 0, 0, 0), false),
    ("M", 1000, 1, d(-3, 0, 0, 0, 0, 1, 0), false),
];

/// `(prefix, power of ten)`.
const PREFIXES: &[(&str, i32)] = &[
    ("Y", 24),
    ("Z", 21),
    ("E", 18),
    ("P", 15),
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("h", 2),
    ("da", 1),
    ("d", -1),
    ("c", -2),
    ("m", -3),
    ("\\mu", -6),
    ("u", -6),
    ("n", -9),
    ("p", -12),
    ("f", -15),
    ("a", -18),
];

fn base(sym: &str) -> Option<Unit> {
    match sym {
        "°C" => {
            return Some(Unit {
                factor: Number::int(1),
                dims: d(0, 0, 0, 0, 1, 0, 0),
                affine: Some(1),
            })
        }
        "°F" => {
            return Some(Unit {
                factor: Number::int(1),
                dims: d(0, 0, 0, 0, 1, 0, 0),
                affine: Some(2),
            })
        }
        _ => {}
    }
    BASE.iter()
        .find(|b| b.0 == sym)
        .and_then(|&(_, n, den, dims, _)| {
            Some(Unit {
                factor: Number::rational(n, den)?,
                dims,
                affine: None,
            })
        })
}

fn symbol(sym: &str) -> Option<Unit> {
    if let Some(u) = base(sym) {
        return Some(u);
    }
    for &(p, e) in PREFIXES {
        if let Some(rest) = sym.strip_prefix(p) {
            if let Some(&(_, n, den, dims, true)) = BASE.iter().find(|b| b.0 == rest) {
                let scale = Number::int(10).pow(Number::int(i128::from(e)));
                let factor = Number::rational(n, den)?.mul(scale);
                return Some(Unit {
                    factor,
                    dims,
                    affine: None,
                });
            }
        }
    }
    None
}

/// Parses a unit expression such as `km/h`, `m/s^2`, `kg\cdot m/s`, `\mu m`, `°C`.
pub(crate) fn parse_unit(s: &str) -> Option<Unit> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_UNIT_LEN {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut acc = Unit {
        factor: Number::int(1),
        dims: [0; 7],
        affine: None,
    };
    let mut count = 0;
    let mut divide = false;
    let mut paren_divide = false;
    while i < b.len() {
        match b[i] {
            b' ' | b'*' | b'.' => {
                i += 1;
                continue;
            }
            b'/' => {
                divide = true;
                i += 1;
                if b.get(i) == Some(&b'(') {
                    paren_divide = true;
                    i += 1;
                }
                continue;
            }
            b')' if paren_divide => {
                paren_divide = false;
                divide = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        let rest = &s[i..];
        if let Some(t) = rest
            .strip_prefix("\\cdot")
            .or_else(|| rest.strip_prefix("·"))
        {
            i = s.len() - t.len();
            continue;
        }
        // A symbol: `°C`, `\Omega`, `\mu` + letters, letters (+ `\Omega`).
        let (sym, len) = if let Some(t) = rest.strip_prefix('°') {
            let l = t.bytes().take_while(u8::is_ascii_alphabetic).count();
            (format!("°{}", &t[..l]), '°'.len_utf8() + l)
        } else if let Some(t) = rest.strip_prefix("\\mu") {
            let t2 = t.trim_start();
            let l = t2.bytes().take_while(u8::is_ascii_alphabetic).count();
            let extra = t.len() - t2.len();
            (format!("\\mu{}", &t2[..l]), 3 + extra + l)
        } else {
            let l = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let t = &rest[l..];
            if let Some(t2) = t.strip_prefix("\\Omega") {
                let _ = t2;
                (format!("{}\\Omega", &rest[..l]), l + 6)
            } else {
                (rest[..l].to_string(), l)
            }
        };
        if len == 0 || sym.is_empty() {
            return None;
        }
        let u = symbol(&sym)?;
        i += len;
        // Exponent.
        let mut exp: i32 = 1;
        if b.get(i) == Some(&b'^') {
            i += 1;
            let braced = b.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let neg = b.get(i) == Some(&b'-');
            if neg {
                i += 1;
            }
            let l = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if l == 0 || l > 1 {
                return None;
            }
            exp = i32::from(b[i] - b'0');
            if neg {
                exp = -exp;
            }
            i += l;
            if braced {
                if b.get(i) != Some(&b'}') {
                    return None;
                }
                i += 1;
            }
        }
        if divide {
            exp = -exp;
        }
        if !paren_divide {
            divide = false;
        }
        if u.affine.is_some() {
            if count > 0 || exp != 1 {
                return None;
            }
            acc.affine = u.affine;
        } else if acc.affine.is_some() {
            return None;
        }
        acc.factor = acc.factor.mul(u.factor.pow(Number::int(i128::from(exp))));
        for (a, x) in acc.dims.iter_mut().zip(u.dims) {
            *a = a.checked_add(x.checked_mul(i8::try_from(exp).ok()?)?)?;
        }
        count += 1;
        if count > 8 {
            return None;
        }
    }
    (count > 0).then_some(acc)
}

/// Splits normalised text into a number part and a trailing unit (`9.8 m/s^2`).
pub(crate) fn split(s: &str) -> Option<(&str, Unit)> {
    // A unit is at most `MAX_UNIT_LEN` bytes, so only the tail is searched.
    let from = s.len().saturating_sub(MAX_UNIT_LEN);
    for (i, c) in s.char_indices() {
        if i == 0 || i < from || !(c.is_ascii_alphabetic() || c == '\\' || c == '°') {
            continue;
        }
        let head = s[..i].trim_end();
        if head.is_empty() || !head.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        // The number part must not end inside a command or an operator.
        if head.ends_with(['^', '_', '{', '\\'])
            || head.ends_with(|ch: char| ch.is_ascii_alphabetic())
        {
            continue;
        }
        if let Some(u) = parse_unit(&s[i..]) {
            return Some((head, u));
        }
    }
    None
}
