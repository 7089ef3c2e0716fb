//! Numeric and exact answer comparison for math and STEM questions.
//!
//! [`MathVerifier`] runs the format gate ([`extract_glm`]) and compares the boxed
//! answer with the gold answer using [`answers_equivalent`]: both are normalised
//! ([`normalize_answer`]), parsed as numbers where possible ([`parse_number`]) and
//! compared exactly (two rationals) or within a relative tolerance; answers that are
//! not numbers are compared as normalised strings.
//!
//! Everything here runs in time linear in its input, uses no recursion and never
//! panics: arithmetic is checked and falls back to `f64` (or rejects) on overflow.

use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Longest normalised text (in bytes) that [`parse_number`] will consider a number.
pub const MAX_NUMBER_LEN: usize = 4096;

/// A parsed numeric answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact rational `num/den`, reduced to lowest terms, with `den > 0`.
    Rational {
        /// Numerator (carries the sign).
        num: i128,
        /// Denominator, always positive.
        den: i128,
    },
    /// An approximate real (scientific notation, or too large for `i128`); finite.
    Real(f64),
}

impl Number {
    /// The value as an `f64` (possibly rounded).
    pub fn to_f64(&self) -> f64 {
        match *self {
            Number::Rational { num, den } => num as f64 / den as f64,
            Number::Real(x) => x,
        }
    }

    /// A finite real, or `None`.
    fn real(x: f64) -> Option<Number> {
        x.is_finite().then_some(Number::Real(x))
    }

    /// `num/den` reduced with a positive denominator; `None` when `den == 0`. Falls
    /// back to [`Number::Real`] when the reduced form does not fit in `i128`.
    fn rational(num: i128, den: i128) -> Option<Number> {
        if den == 0 {
            return None;
        }
        let (n_mag, d_mag) = (num.unsigned_abs(), den.unsigned_abs());
        let g = gcd(n_mag, d_mag); // > 0 because d_mag > 0
        let (n_mag, d_mag) = (n_mag / g, d_mag / g);
        let negative = (num < 0) != (den < 0);
        match (i128::try_from(n_mag), i128::try_from(d_mag)) {
            (Ok(n), Ok(d)) => Some(Number::Rational {
                num: if negative { -n } else { n },
                den: d,
            }),
            _ => Number::real(num as f64 / den as f64),
        }
    }

    fn neg(self) -> Number {
        match self {
            Number::Rational { num, den } => match num.checked_neg() {
                Some(n) => Number::Rational { num: n, den },
                None => Number::Real(-(num as f64) / den as f64),
            },
            Number::Real(x) => Number::Real(-x),
        }
    }

    fn mul(self, other: Number) -> Option<Number> {
        if let (Number::Rational { num: p, den: q }, Number::Rational { num: r, den: s }) =
            (self, other)
        {
            if let (Some(n), Some(d)) = (p.checked_mul(r), q.checked_mul(s)) {
                return Number::rational(n, d);
            }
        }
        Number::real(self.to_f64() * other.to_f64())
    }

    fn div(self, other: Number) -> Option<Number> {
        if let (Number::Rational { num: p, den: q }, Number::Rational { num: r, den: s }) =
            (self, other)
        {
            if r == 0 {
                return None;
            }
            if let (Some(n), Some(d)) = (p.checked_mul(s), q.checked_mul(r)) {
                return Number::rational(n, d);
            }
        }
        let d = other.to_f64();
        if d == 0.0 {
            return None;
        }
        Number::real(self.to_f64() / d)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Scores math/STEM answers: the GLM format gate, then numeric or exact comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MathVerifier {
    /// Relative tolerance used when either side is not an exact rational.
    pub rel_tol: f64,
    /// Compare units (`5 cm` = `0.05 m`, `5 cm` != `5 m`): the `physics` verifier.
    pub units: bool,
}

impl Default for MathVerifier {
    /// A relative tolerance of `1e-6`.
    fn default() -> Self {
        MathVerifier {
            rel_tol: 1e-6,
            units: false,
        }
    }
}

impl MathVerifier {
    /// The `physics` verifier: math with unit-aware comparison.
    pub fn physics() -> Self {
        MathVerifier {
            units: true,
            ..MathVerifier::default()
        }
    }
}

impl Verifier for MathVerifier {
    fn name(&self) -> &str {
        if self.units {
            "physics"
        } else {
            "math"
        }
    }

    fn judge(&self, answer: &str, gold: &str, tolerance: Option<Tolerance>) -> Judgement {
        let rel_tol = match tolerance {
            Some(Tolerance::Rel(r)) => r,
            _ => self.rel_tol,
        };
        let ok = answers_equivalent(answer, gold, rel_tol);
        if ok {
            Judgement::right()
        } else {
            Judgement::wrong(format!(
                "answer \"{}\" != gold \"{}\"",
                excerpt(answer),
                excerpt(gold)
            ))
        }
    }
}

/// Whether `answer` and `gold` denote the same answer.
///
/// Both are normalised with [`normalize_answer`]. If both parse as numbers, two exact
/// rationals must be equal; otherwise the relative error must satisfy
/// `|a − g| ≤ rel_tol · max(|a|, |g|)` (equal values, zero included, always match).
/// A percentage on one side only (`25%`) matches a gold of `0.25` or of `25`. If
/// neither parses, the normalised strings are compared case-insensitively with
/// whitespace removed; if exactly one parses, they differ.
pub fn answers_equivalent(answer: &str, gold: &str, rel_tol: f64) -> bool {
    let na = normalize_answer(answer);
    let ng = normalize_answer(gold);
    match (parse_normalized(&na), parse_normalized(&ng)) {
        (Some((a, a_pct)), Some((g, g_pct))) => {
            if numbers_equal(a, g, rel_tol) {
                return true;
            }
            let hundred = Number::Rational { num: 100, den: 1 };
            let rescaled = match (a_pct, g_pct) {
                (true, false) => a.mul(hundred).map(|a| (a, g)),
                (false, true) => g.mul(hundred).map(|g| (a, g)),
                _ => None,
            };
            rescaled.is_some_and(|(a, g)| numbers_equal(a, g, rel_tol))
        }
        (None, None) => {
            let fold = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .collect::<Vec<char>>()
            };
            fold(&na) == fold(&ng)
        }
        _ => false,
    }
}

fn numbers_equal(a: Number, g: Number, rel_tol: f64) -> bool {
    match (a, g) {
        (Number::Rational { num: an, den: ad }, Number::Rational { num: gn, den: gd }) => {
            an == gn && ad == gd
        }
        _ => {
            let (x, y) = (a.to_f64(), g.to_f64());
            if x == y {
                return true;
            }
            if !x.is_finite() || !y.is_finite() {
                return false;
            }
            (x - y).abs() <= rel_tol * x.abs().max(y.abs())
        }
    }
}

/// Parses an answer as a number, after [`normalize_answer`].
///
/// Accepts integers (any length; beyond `i128` they become [`Number::Real`]),
/// decimals (exact: `0.25` is `1/4`), `a/b`, `\frac{a}{b}` (also `\dfrac`, `\tfrac`,
/// `\frac12`), a leading sign (`-\frac{1}{2}`, `\frac{-1}{2}`), scientific notation
/// (`6.02e23`, `6.02\times10^{23}`, as [`Number::Real`]) and percentages (`25%` and
/// `25\%` are `1/4`). Returns `None` for anything else, for division by zero, for
/// non-finite values and for normalised text longer than [`MAX_NUMBER_LEN`].
pub fn parse_number(s: &str) -> Option<Number> {
    parse_normalized(&normalize_answer(s)).map(|(n, _)| n)
}

/// Normalises an answer for comparison: trims; strips surrounding `$…$`, `$$…$$`,
/// `\(…\)`, `\[…\]` and a trailing period; drops `\left`/`\right`, `^\circ`/`°` and
/// spacing (`\!`, `\,`, `\;`, `\:`, `\quad`, `~`, whitespace); unwraps `\text{…}`,
/// `\mathrm{…}` (and `\textrm`, `\mathbf`, `\textbf`, `\mbox`, `\boxed`); rewrites
/// `\dfrac`/`\tfrac` to `\frac`, `\%` to `%`, `−` to `-`, `×` to `\times`; and removes
/// thousands separators (`1,000`, `1{,}000`, `1\,000`, `1 000`) only where every group
/// after the first has exactly three digits. A space between digits that is not a
/// thousands separator is kept (so `1 2` is not the number 12).
pub fn normalize_answer(s: &str) -> String {
    let s = strip_wrappers(s);
    let rewritten = rewrite_latex(s);
    let grouped = join_digit_groups(&rewritten);
    strip_wrappers(&grouped).to_string()
}

/// Repeatedly trims and strips a trailing period and math delimiters.
fn strip_wrappers(mut s: &str) -> &str {
    const PAIRS: [(&str, &str); 4] = [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")];
    loop {
        let before = s.len();
        s = s.trim();
        if let Some(t) = s.strip_suffix('.') {
            s = t;
        } else {
            for (open, close) in PAIRS {
                if let Some(inner) = s.strip_prefix(open).and_then(|t| t.strip_suffix(close)) {
                    s = inner;
                    break;
                }
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

/// One linear pass over LaTeX-ish text; see [`normalize_answer`].
fn rewrite_latex(s: &str) -> String {
    fn push_space(out: &mut String) {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    let mut out = String::with_capacity(s.len());
    // For each `{` still open: whether its `}` is to be dropped (unwrapped command).
    let mut drop_close: Vec<bool> = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                let name_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
                if name_len > 0 {
                    let (name, tail) = after.split_at(name_len);
                    rest = tail;
                    match name {
                        "left" | "right" => {
                            // `\left.` / `\right.` are invisible delimiters.
                            rest = tail.strip_prefix('.').unwrap_or(tail);
                        }
                        "text" | "textrm" | "mathrm" | "mathbf" | "textbf" | "mbox" | "boxed" => {
                            if let Some(t) = tail.strip_prefix('{') {
                                drop_close.push(true);
                                rest = t;
                            } else {
                                out.push('\\');
                                out.push_str(name);
                            }
                        }
                        "dfrac" | "tfrac" => out.push_str("\\frac"),
                        "quad" | "qquad" => push_space(&mut out),
                        "circ" if out.ends_with('^') => {
                            out.pop();
                        }
                        _ => {
                            out.push('\\');
                            out.push_str(name);
                        }
                    }
                } else if let Some(nc) = after.chars().next() {
                    match nc {
                        ',' | ';' | '!' | ':' | ' ' => push_space(&mut out),
                        '%' => out.push('%'),
                        _ => {
                            out.push('\\');
                            out.push(nc);
                        }
                    }
                    rest = &after[nc.len_utf8()..];
                } else {
                    out.push('\\');
                    rest = after;
                }
            }
            '{' => {
                if let Some(t) = rest.strip_prefix("{,}") {
                    out.push(',');
                    rest = t;
                } else if let Some(t) = rest.strip_prefix("{\\circ}").filter(|_| out.ends_with('^'))
                {
                    out.pop();
                    rest = t;
                } else {
                    drop_close.push(false);
                    out.push('{');
                    rest = after;
                }
            }
            '}' => {
                if drop_close.pop() != Some(true) {
                    out.push('}');
                }
                rest = after;
            }
            '\u{2212}' => {
                out.push('-');
                rest = after;
            }
            '×' => {
                out.push_str("\\times");
                rest = after;
            }
            '·' => {
                out.push_str("\\cdot");
                rest = after;
            }
            '°' => rest = after,
            c if c.is_whitespace() || c == '~' => {
                push_space(&mut out);
                rest = after;
            }
            c => {
                out.push(c);
                rest = after;
            }
        }
    }
    out
}

/// Removes thousands separators (`,` or a space) from digit runs where the first
/// group has 1–3 digits, every later group exactly 3, and one separator kind is used;
/// drops every other space except one between two digits.
fn join_digit_groups(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let n = c.len();
    let digit = |i: usize| i < n && c[i].is_ascii_digit();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < n {
        if digit(i) {
            // A maximal run: digits, then (separator, digits)*.
            let start = i;
            let mut groups: Vec<usize> = Vec::new();
            let mut sep: Option<char> = None;
            let mut mixed = false;
            loop {
                let g = i;
                while digit(i) {
                    i += 1;
                }
                groups.push(i - g);
                if i + 1 < n && (c[i] == ',' || c[i] == ' ') && digit(i + 1) {
                    match sep {
                        None => sep = Some(c[i]),
                        Some(s) if s != c[i] => mixed = true,
                        Some(_) => {}
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            let after_point = start > 0 && c[start - 1] == '.';
            let valid = sep.is_some()
                && !mixed
                && !after_point
                && (1..=3).contains(&groups[0])
                && groups[1..].iter().all(|&g| g == 3);
            for &ch in &c[start..i] {
                if !(valid && (ch == ',' || ch == ' ')) {
                    out.push(ch);
                }
            }
        } else {
            if c[i] != ' ' {
                out.push(c[i]);
            }
            i += 1;
        }
    }
    out
}

/// Parses normalised text: the number, and whether it was a percentage.
fn parse_normalized(u: &str) -> Option<(Number, bool)> {
    if u.is_empty() || u.len() > MAX_NUMBER_LEN || !u.is_ascii() {
        return None;
    }
    let (body, percent) = match u.strip_suffix('%') {
        Some(b) => (b, true),
        None => (u, false),
    };
    let (negative, body) = split_sign(body);
    let body = strip_outer_braces(body);
    let value = match body.strip_prefix("\\frac") {
        Some(args) => parse_frac_args(args)?,
        None => match body.split_once('/') {
            Some((a, b)) => parse_signed_real(a)?.div(parse_signed_real(b)?)?,
            None => parse_real(body)?,
        },
    };
    let value = if negative { value.neg() } else { value };
    let value = if percent {
        value.div(Number::Rational { num: 100, den: 1 })?
    } else {
        value
    };
    Some((value, percent))
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(t) = s.strip_prefix('-') {
        (true, t)
    } else if let Some(t) = s.strip_prefix('+') {
        (false, t)
    } else {
        (false, s)
    }
}

/// `{x}` → `x` when `x` holds no braces.
fn strip_outer_braces(s: &str) -> &str {
    match s.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        Some(inner) if !inner.contains(['{', '}']) => inner,
        _ => s,
    }
}

/// The arguments of `\frac`: `{a}{b}` (no nested braces) or two digits (`\frac12`).
fn parse_frac_args(args: &str) -> Option<Number> {
    let (a, b) = match args.strip_prefix('{') {
        Some(t) => {
            let (a, t) = t.split_once('}')?;
            let b = t.strip_prefix('{')?.strip_suffix('}')?;
            if a.contains('{') || b.contains(['{', '}']) {
                return None;
            }
            (a, b)
        }
        None => {
            let bytes = args.as_bytes();
            if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_digit) {
                return None;
            }
            args.split_at(1)
        }
    };
    parse_signed_real(a)?.div(parse_signed_real(b)?)
}

fn parse_signed_real(s: &str) -> Option<Number> {
    let (negative, body) = split_sign(s);
    let v = parse_real(strip_outer_braces(body))?;
    Some(if negative { v.neg() } else { v })
}

fn take_digits(s: &str) -> (&str, &str) {
    let k = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(k)
}

/// An unsigned decimal with an optional exponent (`e5`, `\times10^{5}`, `\cdot10^5`).
/// Without an exponent the result is exact; with one it is a [`Number::Real`].
fn parse_real(s: &str) -> Option<Number> {
    let (int_part, rest) = take_digits(s);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(t) => take_digits(t),
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if rest.is_empty() {
        return exact_decimal(int_part, frac_part);
    }
    let exp = if let Some(t) = rest.strip_prefix(['e', 'E']) {
        t
    } else {
        let t = ["\\times", "\\cdot", "*"]
            .iter()
            .find_map(|op| rest.strip_prefix(op))?;
        let t = t.strip_prefix("10^")?;
        strip_outer_braces(t)
    };
    let (exp_neg, exp_digits) = split_sign(exp);
    let (digits, tail) = take_digits(exp_digits);
    if digits.is_empty() || !tail.is_empty() {
        return None;
    }
    let text = format!(
        "{}.{}e{}{}",
        if int_part.is_empty() { "0" } else { int_part },
        if frac_part.is_empty() { "0" } else { frac_part },
        if exp_neg { "-" } else { "" },
        digits
    );
    Number::real(text.parse::<f64>().ok()?)
}

/// `int_part.frac_part` (ASCII digits) as an exact rational, or a real when that
/// overflows `i128`; `None` when even `f64` overflows.
fn exact_decimal(int_part: &str, frac_part: &str) -> Option<Number> {
    let frac_part = frac_part.trim_end_matches('0');
    exact_rational(int_part, frac_part).or_else(|| {
        let text = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            if frac_part.is_empty() { "0" } else { frac_part }
        );
        Number::real(text.parse::<f64>().ok()?)
    })
}

/// The exact rational `int_part.frac_part`, or `None` on `i128` overflow.
fn exact_rational(int_part: &str, frac_part: &str) -> Option<Number> {
    let mut mag: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        let d = i128::from(b.wrapping_sub(b'0'));
        mag = mag.checked_mul(10)?.checked_add(d)?;
    }
    let den = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    Number::rational(mag, den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resp(boxed: &str) -> String {
        format!("<think>working</think>\n<answer>The answer is <|begin_of_box|>{boxed}<|end_of_box|>.</answer>")
    }

    fn r(num: i128, den: i128) -> Option<Number> {
        Some(Number::Rational { num, den })
    }

    #[test]
    fn parses_numbers() {
        let cases: &[(&str, Option<Number>)] = &[
            ("42", r(42, 1)),
            ("-42", r(-42, 1)),
            ("+7", r(7, 1)),
            ("-0", r(0, 1)),
            ("0.25", r(1, 4)),
            (".5", r(1, 2)),
            (
                "0.500000000000000000000000000000000000000000000000000",
                r(1, 2),
            ),
            ("3/6", r(1, 2)),
            ("-3/6", r(-1, 2)),
            ("3/-6", r(-1, 2)),
            ("\\frac{3}{6}", r(1, 2)),
            ("\\dfrac{2}{4}", r(1, 2)),
            ("\\tfrac{1}{2}", r(1, 2)),
            ("\\frac12", r(1, 2)),
            ("-\\frac{1}{2}", r(-1, 2)),
            ("\\frac{-1}{2}", r(-1, 2)),
            ("\\frac{1}{-2}", r(-1, 2)),
            ("\\frac{0.5}{2}", r(1, 4)),
            ("$\\frac{1}{2}$", r(1, 2)),
            ("\\(\\frac{1}{2}\\)", r(1, 2)),
            ("1,000", r(1000, 1)),
            ("1{,}000", r(1000, 1)),
            ("1\\,000", r(1000, 1)),
            ("1 000 000", r(1_000_000, 1)),
            ("12,345,678.5", r(24_691_357, 2)),
            ("25%", r(1, 4)),
            ("25\\%", r(1, 4)),
            ("12.5\\%", r(1, 8)),
            ("\\text{42}", r(42, 1)),
            ("\\mathrm{42}.", r(42, 1)),
            ("{42}", r(42, 1)),
            ("\\left(5\\right)", None),
            ("\u{2212}3", r(-3, 1)),
            ("90^\\circ", r(90, 1)),
            ("90^{\\circ}", r(90, 1)),
            ("90°", r(90, 1)),
            ("6.02e23", Some(Number::Real(6.02e23))),
            ("6.02E-23", Some(Number::Real(6.02e-23))),
            ("6.02\\times10^{23}", Some(Number::Real(6.02e23))),
            ("6.02 \\times 10^{23}", Some(Number::Real(6.02e23))),
            ("6.02 × 10^{23}", Some(Number::Real(6.02e23))),
            ("-1.5\\cdot10^{-3}", Some(Number::Real(-1.5e-3))),
            ("2\\times10^3", Some(Number::Real(2e3))),
            ("170141183460469231731687303715884105727", r(i128::MAX, 1)),
            ("-170141183460469231731687303715884105727", r(-i128::MAX, 1)),
            (
                "170141183460469231731687303715884105728",
                Some(Number::Real(1.7014118346046923e38)),
            ),
            // Not numbers.
            ("", None),
            ("1,2", None),
            ("(1,2)", None),
            ("1 2", None),
            ("1,0000", None),
            ("12,34", None),
            ("0.123,456", None),
            ("1/0", None),
            ("\\frac{1}{0}", None),
            ("1/2/3", None),
            ("--5", None),
            ("x", None),
            ("5x", None),
            ("1e", None),
            ("1e999", None),
            ("\\frac{\\sqrt{2}}{2}", None),
            ("\\frac{1}{2", None),
            ("\\frac123", None),
            ("10^{", None),
            ("%", None),
            ("٣", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_number(input), *want, "input: {input:?}");
        }
    }

    #[test]
    fn huge_integers_fall_back_to_real() {
        let big = "9".repeat(60);
        assert!(matches!(parse_number(&big), Some(Number::Real(x)) if x > 9e59));
        let tiny = format!("0.{}1", "0".repeat(60));
        assert!(matches!(parse_number(&tiny), Some(Number::Real(x)) if x > 0.0 && x < 1e-59));
        let too_long = "1".repeat(MAX_NUMBER_LEN + 1);
        assert_eq!(parse_number(&too_long), None);
        let overflow = "9".repeat(400);
        assert_eq!(parse_number(&overflow), None);
    }

    #[test]
    fn equivalences() {
        let tol = 1e-6;
        let cases: &[(&str, &str, bool)] = &[
            ("12", "12", true),
            ("12", "13", false),
            ("0.5", "1/2", true),
            ("0.5", "\\frac{1}{2}", true),
            ("\\dfrac{1}{2}", "0.50", true),
            ("1/3", "0.333", false),
            ("1/3", "0.3333333", false),
            ("0.333333333", "0.3333333333", false),
            ("6.02e23", "602000000000000000000000", true),
            ("6.02\\times10^{23}", "6.0200001e23", true),
            ("6.02\\times10^{23}", "6.03e23", false),
            ("1e-30", "1.1e-30", false),
            ("1e-30", "1.0000001e-30", true),
            ("1,000", "1000", true),
            ("1{,}000", "1000", true),
            ("1 000", "1000", true),
            ("(1,2)", "12", false),
            ("1,2", "12", false),
            ("1 2", "12", false),
            ("-0", "0", true),
            ("-0.0", "0", true),
            ("-0e0", "0", true),
            ("-\\frac{1}{2}", "\\frac{-1}{2}", true),
            ("-1/2", "0.5", false),
            ("25%", "0.25", true),
            ("25\\%", "25", true),
            ("25%", "\\frac{1}{4}", true),
            ("25%", "24", false),
            ("0.25", "25%", true),
            ("25", "25%", true),
            ("25%", "25%", true),
            ("25%", "2500%", false),
            ("$42$", "42", true),
            ("42.", "42", true),
            ("\\text{42}", "42", true),
            ("x = 3", "X=3", true),
            ("\\text{Yes}", "yes", true),
            ("(1, 2)", "(1,2)", true),
            ("\\left( 1, 2 \\right)", "(1,2)", true),
            ("\\sqrt{2}", "\\sqrt{2}", true),
            ("\\sqrt{2}", "1.41421356", false),
            ("A", "B", false),
            ("42", "forty-two", false),
            ("", "", true),
        ];
        for (a, g, want) in cases {
            assert_eq!(
                answers_equivalent(a, g, tol),
                *want,
                "answer {a:?} vs gold {g:?}"
            );
        }
    }

    #[test]
    fn verify_scores() {
        let v = MathVerifier::default();
        assert_eq!(v.name(), "math");

        let ok = v.verify(&resp("\\frac{1}{2}"), "0.5");
        assert_eq!(ok.reward, 1.0);
        assert!(ok.correct && ok.format_ok);
        assert_eq!(ok.extracted.as_deref(), Some("\\frac{1}{2}"));
        assert_eq!(ok.subscores.get("format"), Some(&1.0));
        assert_eq!(ok.subscores.get("answer"), Some(&1.0));
        assert_eq!(ok.reason, None);

        let wrong = v.verify(&resp("12"), "13");
        assert_eq!(wrong.reward, 0.0);
        assert!(!wrong.correct && wrong.format_ok);
        assert_eq!(wrong.extracted.as_deref(), Some("12"));
        assert_eq!(wrong.subscores.get("format"), Some(&1.0));
        assert_eq!(wrong.subscores.get("answer"), Some(&0.0));
        assert_eq!(
            wrong.reason.as_deref(),
            Some("answer \"12\" != gold \"13\"")
        );

        let bad = v.verify("The answer is \\boxed{13}", "13");
        assert_eq!(bad.reward, 0.0);
        assert!(!bad.correct && !bad.format_ok);
        assert_eq!(bad.extracted, None);
        assert_eq!(bad.subscores.get("format"), Some(&0.0));
        assert!(bad.reason.is_some_and(|r| r.starts_with("format: ")));

        let latex = v.verify(&resp("\\boxed{13}"), "13");
        assert!(!latex.format_ok);
    }

    #[test]
    fn reasons_are_bounded() {
        let v = MathVerifier::default();
        let long = "7".repeat(10_000);
        let verdict = v.verify(&resp(&long), "8");
        assert!(verdict.reason.is_some_and(|r| r.len() < 1000));
    }

    #[test]
    fn tolerance_is_configurable() {
        let loose = MathVerifier {
            rel_tol: 1e-2,
            ..MathVerifier::default()
        };
        assert_eq!(loose.verify(&resp("3.14"), "3.14159e0").reward, 1.0);
        assert_eq!(
            MathVerifier::default()
                .verify(&resp("3.14"), "3.14159e0")
                .reward,
            0.0
        );
        // Two exact rationals are compared exactly whatever the tolerance.
        assert_eq!(loose.verify(&resp("3.14"), "3.14159").reward, 0.0);
    }

    #[test]
    fn huge_inputs_return() {
        let v = MathVerifier::default();
        let mb = "9".repeat(1 << 20);
        let _ = v.verify(&resp(&mb), &mb);
        let _ = v.verify(&mb, "1");
        let braces = "{".repeat(100_000);
        let _ = v.verify(&resp(&braces), &braces);
        let _ = v.verify(&braces, "1");
        let closes = "}".repeat(100_000);
        let _ = answers_equivalent(&closes, &braces, 1e-6);
        let dollars = "$".repeat(100_001);
        let _ = answers_equivalent(&dollars, "1", 1e-6);
        let text = "\\text{".repeat(100_000);
        let _ = answers_equivalent(&text, "1", 1e-6);
        let commas = "1,000".repeat(50_000);
        let _ = answers_equivalent(&commas, "1", 1e-6);
        let thousands = format!("1{}", ",000".repeat(2000));
        let _ = parse_number(&thousands);
        let thousands = format!("1{}", ",000".repeat(10));
        assert_eq!(parse_number(&thousands), r(10i128.pow(30), 1));
    }

    fn soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("<think>".to_string()),
            Just("</think>".to_string()),
            Just("<answer>".to_string()),
            Just("</answer>".to_string()),
            Just("<|begin_of_box|>".to_string()),
            Just("<|end_of_box|>".to_string()),
            Just("\\frac".to_string()),
            Just("\\text{".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("{,}".to_string()),
            Just("$".to_string()),
            Just("%".to_string()),
            Just("\\times10^".to_string()),
            "[-+./,e 0-9]{0,6}",
            any::<String>(),
        ];
        prop::collection::vec(token, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn verify_never_panics(response in any::<String>(), gold in any::<String>()) {
            let v = MathVerifier::default().verify(&response, &gold);
            prop_assert!(v.reward == 0.0 || v.reward == 1.0);
        }

        #[test]
        fn verify_never_panics_on_soup(response in soup(), gold in soup(), boxed in soup()) {
            let v = MathVerifier::default();
            let _ = v.verify(&response, &gold);
            let verdict = v.verify(&resp(&boxed), &gold);
            prop_assert_eq!(verdict.reward == 1.0, verdict.correct);
            let _ = parse_number(&boxed);
            let _ = answers_equivalent(&boxed, &gold, 1e-6);
        }

        #[test]
        fn integer_answers(n in any::<i64>()) {
            let v = MathVerifier::default();
            let gold = n.to_string();
            prop_assert_eq!(v.verify(&resp(&gold), &gold).reward, 1.0);
            let next = (i128::from(n) + 1).to_string();
            prop_assert_eq!(v.verify(&resp(&gold), &next).reward, 0.0);
            prop_assert_eq!(v.verify(&resp(&next), &gold).reward, 0.0);
        }

        #[test]
        fn rationals_match_their_decimals(num in -10_000i64..10_000, pow in 0u32..6) {
            let den = 10i64.pow(pow);
            let frac = format!("\\frac{{{num}}}{{{den}}}");
            let dec = format!("{}", num as f64 / den as f64);
            prop_assert!(answers_equivalent(&frac, &dec, 1e-6), "{} vs {}", frac, dec);
        }
    }
}
