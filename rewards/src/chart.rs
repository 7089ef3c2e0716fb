//! The `chart` verifier: chart and table question answering (ChartQA-style relaxed
//! accuracy, paper Table 1).
//!
//! Rules, in order:
//!
//! 1. Both sides are cleaned: trimmed, `$…$` / `\(…\)` delimiters, `\text{…}`-style
//!    wrappers (`\text`, `\textbf`, `\mathrm`, `\mathbf`, `\textrm`, `\mbox`) and a
//!    trailing period are removed, and `\%` / `\$` become `%` / `$`.
//! 2. When the gold answer is a number, the answer must be a number too:
//!    - an integer gold in `[year_min, year_max]` (default 1000–3000, written without a
//!      decimal point or percent sign) is read as a **year** and must match exactly;
//!    - otherwise the relative error must be within `rel_tol` (default 2.5e-2), or
//!      within the request's [`Tolerance`] when one is given.
//! 3. Otherwise the two texts must be equal ignoring case and whitespace.
//!
//! What a number may carry (documented choice): a sign, thousands separators
//! (`1,234,567` — only groups of exactly three digits), a leading currency symbol
//! (`$`, `€`, `£`, `¥`, also after the sign), a trailing `%` (or the word `percent`)
//! and a trailing unit of at most [`MAX_UNIT_CHARS`] chars of letters (`kg`,
//! `million`, `km/h`, `°C`, `m²`). Units and currencies are **ignored**, not converted:
//! chart labels carry the scale, and golds are written without it. A percentage on one
//! side only is compared both as written (`25%` vs `25`) and as a fraction
//! (`25%` vs `0.25`). Anything else (fractions, scientific notation) goes through
//! [`crate::math::parse_number`]. A value followed by another number (`3 4`, `5-7`) is
//! not a number.
//!
//! Work is linear in the input and inputs longer than [`MAX_ANSWER_BYTES`] are
//! rejected up front.

use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Longest answer (in bytes) the chart verifier considers; longer ones are wrong.
pub const MAX_ANSWER_BYTES: usize = 4096;

/// Longest unit suffix (in chars) ignored after a number.
pub const MAX_UNIT_CHARS: usize = 16;

/// The `chart` verifier (see the module docs for the exact rules).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartVerifier {
    /// Relative tolerance for numbers that are not years (default `2.5e-2`).
    pub rel_tol: f64,
    /// Smallest integer gold read as a year and compared exactly (default 1000).
    pub year_min: i64,
    /// Largest integer gold read as a year and compared exactly (default 3000).
    pub year_max: i64,
}

impl Default for ChartVerifier {
    /// Relative tolerance 2.5e-2; years 1000–3000 exact.
    fn default() -> Self {
        ChartVerifier {
            rel_tol: 2.5e-2,
            year_min: 1000,
            year_max: 3000,
        }
    }
}

/// A number read from a chart answer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ChartNumber {
    value: f64,
    /// Written with `%` or `percent`.
    percent: bool,
    /// Written as a plain integer (digits and separators only).
    integer: bool,
}

impl Verifier for ChartVerifier {
    fn name(&self) -> &str {
        "chart"
    }

    fn judge(&self, answer: &str, gold: &str, tolerance: Option<Tolerance>) -> Judgement {
        if answer.len() > MAX_ANSWER_BYTES {
            return Judgement::wrong(format!(
                "answer longer than {MAX_ANSWER_BYTES} bytes ({} bytes)",
                answer.len()
            ));
        }
        if gold.len() > MAX_ANSWER_BYTES {
            return Judgement::wrong(format!("gold longer than {MAX_ANSWER_BYTES} bytes"));
        }
        let (a_clean, g_clean) = (clean(answer), clean(gold));
        let Some(g) = parse_chart_number(&g_clean) else {
            let ok = fold_text(&a_clean) == fold_text(&g_clean);
            return Judgement::exact(ok, answer, gold);
        };
        let Some(a) = parse_chart_number(&a_clean) else {
            return Judgement::wrong(format!(
                "gold is a number but answer \"{}\" is not",
                excerpt(answer)
            ));
        };
        let is_year = g.integer
            && !g.percent
            && g.value.fract() == 0.0
            && g.value >= self.year_min as f64
            && g.value <= self.year_max as f64;
        let tol = tolerance.unwrap_or(Tolerance::Rel(self.rel_tol));
        // Candidate (answer, gold) value pairs: as written, and percent-rescaled when
        // only one side carries a percent sign.
        let mut pairs = vec![(a.value, g.value)];
        match (a.percent, g.percent) {
            (true, false) => pairs.push((a.value / 100.0, g.value)),
            (false, true) => pairs.push((a.value, g.value / 100.0)),
            _ => {}
        }
        let rel_error = pairs
            .iter()
            .map(|&(x, y)| relative_error(x, y))
            .fold(f64::INFINITY, f64::min);
        let ok = if is_year {
            a.value == g.value && !a.percent
        } else {
            pairs.iter().any(|&(x, y)| tol.close(x, y))
        };
        let j = if ok {
            Judgement::right()
        } else if is_year {
            Judgement::wrong(format!(
                "year: answer \"{}\" != gold \"{}\" (years compare exactly)",
                excerpt(answer),
                excerpt(gold)
            ))
        } else {
            Judgement::wrong(format!(
                "answer \"{}\" != gold \"{}\" (relative error {:.3e}, tolerance {:?})",
                excerpt(answer),
                excerpt(gold),
                rel_error,
                tol
            ))
        };
        j.with(
            "rel_error",
            if rel_error.is_finite() {
                rel_error
            } else {
                1.0
            },
        )
    }
}

/// `|a − g| / max(|a|, |g|)`, 0 for equal values.
fn relative_error(a: f64, g: f64) -> f64 {
    if a == g {
        return 0.0;
    }
    let d = (a - g).abs() / a.abs().max(g.abs());
    if d.is_finite() {
        d
    } else {
        f64::INFINITY
    }
}

/// Removes math delimiters, text wrappers and a trailing period.
fn clean(s: &str) -> String {
    const WRAPPERS: [&str; 7] = [
        "\\textbf{",
        "\\textrm{",
        "\\mathrm{",
        "\\mathbf{",
        "\\text{",
        "\\mbox{",
        "\\textit{",
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    // Wrapper openings and their closing braces are dropped (the content stays); other
    // braces are kept. `opened` records, per open brace, whether it belongs to a wrapper.
    let mut opened: Vec<bool> = Vec::new();
    while !rest.is_empty() {
        if let Some(w) = WRAPPERS.iter().find(|w| rest.starts_with(**w)) {
            rest = &rest[w.len()..];
            opened.push(true);
            continue;
        }
        if let Some(t) = rest.strip_prefix("\\%") {
            out.push('%');
            rest = t;
            continue;
        }
        if let Some(t) = rest.strip_prefix("\\$") {
            out.push('$');
            rest = t;
            continue;
        }
        for p in ["\\(", "\\)", "\\[", "\\]", "\\,", "\\!", "\\;"] {
            if let Some(t) = rest.strip_prefix(p) {
                rest = t;
            }
        }
        let mut chars = rest.chars();
        match chars.next() {
            Some('{') => {
                opened.push(false);
                out.push('{');
            }
            Some('}') => {
                if !opened.pop().unwrap_or(false) {
                    out.push('}');
                }
            }
            Some(c) => out.push(c),
            None => break,
        }
        rest = chars.as_str();
    }
    let mut t = out.trim();
    loop {
        let before = t.len();
        t = t.trim();
        if let Some(x) = t.strip_suffix('.') {
            t = x;
        }
        // Math delimiters `$…$` (a lone leading `$` is a currency symbol and stays).
        if t.len() >= 2 && t.starts_with('$') && t.ends_with('$') {
            t = &t[1..t.len() - 1];
        }
        if t.len() == before {
            break;
        }
    }
    t.to_string()
}

/// Lowercase with all whitespace removed.
fn fold_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£' | '¥' | '￥')
}

/// Parses a cleaned chart answer as a number (see the module docs).
fn parse_chart_number(s: &str) -> Option<ChartNumber> {
    let mut s = s.trim();
    let mut negative = false;
    // Sign and currency in either order: `-$5`, `$-5`, `€ 5`.
    for _ in 0..2 {
        if let Some(t) = s.strip_prefix(['-', '−']) {
            if negative {
                return None;
            }
            negative = true;
            s = t.trim_start();
        } else if let Some(t) = s.strip_prefix('+') {
            s = t.trim_start();
        }
        if let Some(c) = s.chars().next().filter(|&c| is_currency(c)) {
            s = s[c.len_utf8()..].trim_start();
        }
    }
    // Trailing percent, then unit.
    let (body, percent) = split_suffix(s)?;
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let (value, integer) = match parse_plain(body) {
        Some(v) => v,
        None => {
            // Fractions, scientific notation and LaTeX forms, via the math parser.
            if body.contains('%') {
                return None;
            }
            let n = crate::math::parse_number(body)?;
            (n.to_f64(), false)
        }
    };
    if !value.is_finite() {
        return None;
    }
    Some(ChartNumber {
        value: if negative { -value } else { value },
        percent,
        integer,
    })
}

/// Splits `body [%|percent] [unit]` into the body and whether a percent was present.
/// `None` when the suffix is not a plausible unit.
fn split_suffix(s: &str) -> Option<(&str, bool)> {
    // The numeric body ends at the last digit (or `}` closing a LaTeX group).
    let end = s
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_ascii_digit() || *c == '}')
        .map(|(i, c)| i + c.len_utf8())?;
    let (body, mut suffix) = s.split_at(end);
    suffix = suffix.trim();
    let mut percent = false;
    if let Some(t) = suffix.strip_prefix('%') {
        percent = true;
        suffix = t.trim();
    } else if let Some(t) = suffix
        .get(..7)
        .filter(|h| h.eq_ignore_ascii_case("percent"))
        .and_then(|_| suffix.get(7..))
    {
        percent = true;
        suffix = t.trim();
        if suffix.eq_ignore_ascii_case("age") {
            suffix = "";
        }
    }
    if suffix.is_empty() {
        return Some((body, percent));
    }
    let unit_ok = suffix.chars().count() <= MAX_UNIT_CHARS
        && suffix.chars().all(|c| {
            c.is_alphabetic() || matches!(c, '/' | '°' | '²' | '³' | ' ' | '^' | '.' | '·')
        })
        && suffix.chars().next().is_some_and(|c| c != '.');
    unit_ok.then_some((body, percent))
}

/// A plain decimal: digits with optional 3-digit comma groups and a fractional part.
/// Returns the value and whether it was written as an integer.
fn parse_plain(s: &str) -> Option<(f64, bool)> {
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let int_digits: String = if int_part.contains(',') {
        let mut groups = int_part.split(',');
        let first = groups.next()?;
        if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits = first.to_string();
        for g in groups {
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.push_str(g);
        }
        digits
    } else {
        if !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        int_part.to_string()
    };
    if let Some(f) = frac_part {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if int_digits.is_empty() && frac_part.is_none() {
        return None;
    }
    let text = match frac_part {
        Some(f) => format!(
            "{}.{f}",
            if int_digits.is_empty() {
                "0"
            } else {
                &int_digits
            }
        ),
        None => int_digits,
    };
    let v: f64 = text.parse().ok()?;
    Some((v, frac_part.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(a: &str, g: &str) -> f64 {
        ChartVerifier::default().judge(a, g, None).score
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            // numbers within 2.5% relative tolerance
            ("12.3", "12.3", true),
            ("12.5", "12.3", true),
            ("12.7", "12.3", false),
            ("0.98", "1", true),
            ("0.97", "1", false),
            ("-5", "-5.1", true),
            ("5", "-5", false),
            ("0", "0", true),
            ("0.001", "0", false),
            // years compare exactly
            ("2019", "2019", true),
            ("2020", "2019", false),
            ("2019.0", "2019", true),
            ("2019.5", "2019", false),
            ("1999", "2000", false),
            ("3001", "3000", false),
            ("3001", "3002", true), // 3002 is above the year range
            ("3100", "3101", true),
            ("3100", "3050", true), // not a year: relative tolerance
            ("999", "1000", false), // gold 1000 is a year
            ("2,019", "2019", true),
            // separators, currency, percent, units
            ("1,234,567", "1234567", true),
            ("1,23", "123", false),
            ("$1,200", "1200", true),
            ("€12.5", "12.5", true),
            ("£7", "7", true),
            ("¥300", "300", true),
            ("-$5", "-5", true),
            ("$-5", "-5", true),
            ("\\$5", "5", true),
            ("25%", "25", true),
            ("25\\%", "25", true),
            ("0.25", "25%", true),
            ("25%", "0.25", true),
            ("25 percent", "25", true),
            ("25%", "25.5", true),
            ("25%", "26", false),
            ("25%", "30", false),
            ("12 million", "12", true),
            ("12.5 kg", "12.5", true),
            ("60 km/h", "60", true),
            ("$12$", "12", true),
            ("\\text{12}", "12", true),
            ("12.", "12", true),
            ("\\frac{1}{2}", "0.5", true),
            ("\\frac{12}{5}", "2.4", true),
            ("1/2", "0.5", true),
            // not numbers
            ("12 13", "12", false),
            ("5-7", "5", false),
            ("about twelve", "12", false),
            ("", "12", false),
            ("twelve", "12", false),
            ("12 with a very long unit text here", "12", false),
            // text answers
            ("Yes", "yes", true),
            ("yes.", "Yes", true),
            ("\\text{United States}", "united states", true),
            ("$\\text{Blue}$", "blue", true),
            ("No", "Yes", false),
            ("United Kingdom", "United States", false),
            ("12", "twelve", false),
        ];
        for &(a, g, ok) in cases {
            let j = ChartVerifier::default().judge(a, g, None);
            assert_eq!(j.correct, ok, "answer {a:?} gold {g:?}: {j:?}");
            assert_eq!(j.score, if ok { 1.0 } else { 0.0 });
            if !ok {
                assert!(j.reason.is_some());
            }
        }
    }

    #[test]
    fn tolerance_override_and_subscore() {
        let v = ChartVerifier::default();
        assert!(!v.judge("105", "100", None).correct);
        assert!(v.judge("105", "100", Some(Tolerance::Rel(0.1))).correct);
        assert!(v.judge("100.4", "100", Some(Tolerance::Abs(0.5))).correct);
        assert!(!v.judge("101", "100", Some(Tolerance::Abs(0.5))).correct);
        // years stay exact under an override
        assert!(!v.judge("2001", "2000", Some(Tolerance::Rel(0.1))).correct);
        let j = v.judge("110", "100", None);
        let e = j.subscores["rel_error"];
        assert!((e - 10.0 / 110.0).abs() < 1e-9, "{e}");
        assert_eq!(score("100", "100"), 1.0);
    }

    #[test]
    fn adversarial_inputs_are_cheap() {
        let big = "9".repeat(1 << 20);
        assert_eq!(score(&big, "9"), 0.0);
        let nested = "{".repeat(100_000) + "1" + &"}".repeat(100_000);
        assert!(nested.len() > MAX_ANSWER_BYTES);
        assert_eq!(score(&nested, "1"), 0.0);
        assert_eq!(score(&"9".repeat(400), "1"), 0.0); // overflows f64: not a number
        assert_eq!(score("\u{0}\u{ffff}%%$$", "1"), 0.0);
        assert_eq!(score("$", "$"), 1.0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = ChartVerifier::default();
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
