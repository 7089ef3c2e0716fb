//! The `counting` verifier: exact whole-number answers (paper Table 1), strict about
//! hedges — the paper's example of late reward hacking is answering "a number
//! between 0 and 10" to a counting question.
//!
//! Accepted: exactly one whole number, written as digits (`7`, `7.`, `7.0`, `1,000`),
//! as an English number word (`zero` … `ninety-nine`, also `twenty one`, `one
//! hundred`/`a hundred`/`hundred`, and `none` for 0), optionally inside `\text{…}` or
//! `$…$`, optionally with words around it (`7 apples`, `There are 7 apples.`,
//! `Answer: 7`).
//!
//! Rejected, with the reason:
//! - **hedged answer**: approximations and bounds anywhere (`approximately`, `roughly`,
//!   `nearly`, `almost`, `at least`, `at most`, `more`, `less`, `fewer`, `than`,
//!   `between`, `up to`, `or so`, `maybe`, `probably`, `several`, `some`, `many`,
//!   `not`, `unknown`, …), `about`/`around`/`over`/`under`/`above`/`below` before the
//!   number, the symbols `~ ≈ + > < ≥ ≤ ± ?`, the LaTeX commands `\approx \sim \geq
//!   \leq \pm …`, and common Chinese hedges (`约`, `左右`, `至少`, …);
//! - **range or alternatives / more than one number**: `3-5`, `3 to 5`, `7 or 8`,
//!   `7 apples and 3 pears`, `7 (seven)`;
//! - **not a whole number**: `7.5`; **percentage**: `7%`; **negative count**: `-3`;
//! - **no number**, and answers longer than [`MAX_ANSWER_BYTES`].
//!
//! Work is linear in the (capped) input.

use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Longest answer (in bytes) read as a count; longer answers are wrong.
pub const MAX_ANSWER_BYTES: usize = 512;

/// The `counting` verifier (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CountingVerifier;

impl Verifier for CountingVerifier {
    fn name(&self) -> &str {
        "counting"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let g = match parse_count(gold) {
            Ok(g) => g,
            Err(e) => return Judgement::wrong(format!("gold \"{}\": {e}", excerpt(gold))),
        };
        match parse_count(answer) {
            Ok(a) => Judgement::exact(a == g, answer, gold),
            Err(e) => Judgement::wrong(format!("{e}: \"{}\"", excerpt(answer))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// ASCII digits (thousands separators removed) and an optional fractional part.
    Digits(String, Option<String>),
    /// A lowercase word (letters, with inner `-` or `'`).
    Word(String),
    /// A LaTeX command name without the backslash.
    Command(String),
    /// Any other non-space char.
    Symbol(char),
}

/// Hedge words anywhere in the answer.
const HEDGE_WORDS: &[&str] = &[
    "approximately",
    "approx",
    "approximate",
    "roughly",
    "nearly",
    "almost",
    "circa",
    "ca",
    "estimated",
    "estimate",
    "est",
    "maybe",
    "perhaps",
    "probably",
    "possibly",
    "likely",
    "least",
    "most",
    "more",
    "less",
    "fewer",
    "than",
    "between",
    "several",
    "some",
    "many",
    "few",
    "multiple",
    "range",
    "plus",
    "ish",
    "unclear",
    "unknown",
    "uncertain",
    "cannot",
    "can't",
    "either",
    "somewhere",
    "not",
    "guess",
    "dozens",
    "hundreds",
    "thousands",
    "exceeding",
    "exceeds",
    "beyond",
];

/// Hedge words only before the number (`over 7`, but `7 birds above the tree`).
const HEDGE_PREFIX_WORDS: &[&str] = &["about", "around", "over", "under", "above", "below"];

/// Two-word hedges.
const HEDGE_PAIRS: &[(&str, &str)] = &[("up", "to"), ("or", "so")];

const HEDGE_COMMANDS: &[&str] = &[
    "approx", "sim", "simeq", "geq", "leq", "ge", "le", "gt", "lt", "pm", "mp", "lesssim",
    "gtrsim", "ll", "gg", "neq", "ne", "geqslant", "leqslant",
];

const HEDGE_SYMBOLS: &[char] = &[
    '~', '≈', '+', '>', '<', '≥', '≤', '±', '?', '≳', '≲', '∼', '≃', '～', '？',
];

const HEDGE_CJK: &[&str] = &[
    "约", "左右", "至少", "最多", "超过", "多于", "少于", "大概", "或者", "可能", "以上", "以下",
];

/// Chars that may separate two numbers in a range.
const RANGE_SYMBOLS: &[char] = &['-', '–', '—', '/', '−'];

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn unit_word(w: &str) -> Option<u64> {
    UNITS.iter().position(|u| *u == w).map(|i| i as u64)
}

fn tens_word(w: &str) -> Option<u64> {
    TENS.iter()
        .position(|t| *t == w)
        .map(|i| 20 + 10 * i as u64)
}

/// The value of a single number word (`seven`, `twenty-one`, `hundred`, `none`).
fn number_word(w: &str) -> Option<u64> {
    if w == "none" {
        return Some(0);
    }
    if w == "hundred" {
        return Some(100);
    }
    if let Some(v) = unit_word(w).or_else(|| tens_word(w)) {
        return Some(v);
    }
    let (t, u) = w.split_once('-')?;
    let (t, u) = (tens_word(t)?, unit_word(u)?);
    (1..=9).contains(&u).then_some(t + u)
}

fn tokenize(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || matches!(c, '{' | '}' | '$') {
            i += 1;
        } else if c.is_ascii_digit() {
            let mut int = String::new();
            while i < chars.len() {
                if chars[i].is_ascii_digit() {
                    int.push(chars[i]);
                    i += 1;
                } else if chars[i] == ','
                    && chars.len() >= i + 4
                    && chars[i + 1..i + 4].iter().all(char::is_ascii_digit)
                    && !chars.get(i + 4).is_some_and(char::is_ascii_digit)
                {
                    i += 1; // thousands separator: exactly three digits follow
                } else {
                    break;
                }
            }
            let mut frac = None;
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                let mut f = String::new();
                while i < chars.len() && chars[i].is_ascii_digit() {
                    f.push(chars[i]);
                    i += 1;
                }
                frac = Some(f);
            }
            tokens.push(Token::Digits(int, frac));
        } else if c == '\\' && chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 1;
            let mut name = String::new();
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                name.push(chars[i]);
                i += 1;
            }
            tokens.push(Token::Command(name));
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while i < chars.len() {
                let ch = chars[i];
                let inner = matches!(ch, '-' | '\'' | '’')
                    && !w.is_empty()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if ch.is_alphabetic() || inner {
                    w.extend(if ch == '’' { '\'' } else { ch }.to_lowercase());
                    i += 1;
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(w));
        } else {
            tokens.push(Token::Symbol(c));
            i += 1;
        }
    }
    tokens
}

/// Reads `s` as a count (see the module docs); the error says why not.
fn parse_count(s: &str) -> Result<u64, String> {
    if s.len() > MAX_ANSWER_BYTES {
        return Err(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
    }
    if let Some(h) = HEDGE_CJK.iter().find(|h| s.contains(**h)) {
        return Err(format!("hedged answer (`{h}`)"));
    }
    let tokens = tokenize(s);
    // Numbers: (token index, value or error).
    let mut numbers: Vec<(usize, Result<u64, String>)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Digits(int, frac) => {
                let v = match (int.parse::<u64>(), frac) {
                    (Err(_), _) => Err("number too large".to_string()),
                    (Ok(_), Some(f)) if f.bytes().any(|b| b != b'0') => {
                        Err("not a whole number".to_string())
                    }
                    (Ok(v), _) => Ok(v),
                };
                numbers.push((i, v));
            }
            Token::Word(w) => {
                if let Some(mut v) = number_word(w) {
                    let start = i;
                    // `twenty one`, `one hundred`, `a hundred`.
                    if let Some(Token::Word(next)) = tokens.get(i + 1) {
                        if (20..100).contains(&v) && v % 10 == 0 {
                            if let Some(u) = unit_word(next).filter(|u| (1..=9).contains(u)) {
                                v += u;
                                i += 1;
                            }
                        } else if v == 1 && w == "one" && next == "hundred" {
                            v = 100;
                            i += 1;
                        }
                    }
                    numbers.push((start, Ok(v)));
                } else if w == "a"
                    && matches!(tokens.get(i + 1), Some(Token::Word(n)) if n == "hundred")
                {
                    numbers.push((i, Ok(100)));
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let first_number = numbers.first().map_or(usize::MAX, |n| n.0);
    // Hedges.
    for (k, t) in tokens.iter().enumerate() {
        let hedge = match t {
            Token::Word(w) => {
                HEDGE_WORDS.contains(&w.as_str())
                    || (k < first_number && HEDGE_PREFIX_WORDS.contains(&w.as_str()))
                    || matches!(tokens.get(k + 1), Some(Token::Word(n))
                        if HEDGE_PAIRS.contains(&(w.as_str(), n.as_str())))
            }
            Token::Command(c) => HEDGE_COMMANDS.contains(&c.as_str()),
            Token::Symbol(c) => HEDGE_SYMBOLS.contains(c),
            Token::Digits(..) => false,
        };
        if hedge {
            let what = match t {
                Token::Word(w) => w.clone(),
                Token::Command(c) => format!("\\{c}"),
                Token::Symbol(c) => c.to_string(),
                Token::Digits(d, _) => d.clone(),
            };
            return Err(format!("hedged answer (`{what}`)"));
        }
    }
    match numbers.len() {
        0 => return Err("no number in answer".to_string()),
        1 => {}
        _ => {
            let (lo, hi) = (numbers[0].0, numbers[numbers.len() - 1].0);
            let range = tokens[lo..=hi].iter().any(|t| match t {
                Token::Symbol(c) => RANGE_SYMBOLS.contains(c),
                Token::Word(w) => matches!(w.as_str(), "to" | "or" | "through" | "and" | "till"),
                _ => false,
            });
            return Err(if range {
                "range or alternatives, not one count".to_string()
            } else {
                format!("more than one number ({})", numbers.len())
            });
        }
    }
    let (idx, value) = numbers.swap_remove(0);
    if matches!(tokens.get(idx + 1), Some(Token::Symbol('%' | '％'))) {
        return Err("percentage, not a count".to_string());
    }
    if idx > 0 && matches!(tokens[idx - 1], Token::Symbol(c) if RANGE_SYMBOLS.contains(&c)) {
        return Err("negative count".to_string());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, u64)] = &[
            ("7", 7),
            ("7.", 7),
            ("7.0", 7),
            ("7.00", 7),
            (" 7 ", 7),
            ("seven", 7),
            ("Seven", 7),
            ("\\text{7}", 7),
            ("$7$", 7),
            ("\\textbf{seven}", 7),
            ("7 apples", 7),
            ("7 red apples.", 7),
            ("There are 7 apples in the image.", 7),
            ("Answer: 7", 7),
            ("0", 0),
            ("zero", 0),
            ("none", 0),
            ("twenty", 20),
            ("twenty-one", 21),
            ("twenty one", 21),
            ("ninety-nine", 99),
            ("one hundred", 100),
            ("a hundred", 100),
            ("1,000", 1000),
            ("12,345 stars", 12345),
            ("7个苹果", 7),
            ("7 birds above the tree", 7),
        ];
        for &(a, want) in cases {
            assert_eq!(parse_count(a), Ok(want), "{a:?}");
            let j = CountingVerifier.judge(a, &want.to_string(), None);
            assert!(j.correct, "{a:?}: {j:?}");
        }
    }

    #[test]
    fn rejected_forms() {
        let cases: &[(&str, &str)] = &[
            ("3-5", "range"),
            ("3 - 5", "range"),
            ("3–5", "range"),
            ("3 to 5", "range"),
            ("between 3 and 5", "hedged"),
            ("a number between 0 and 10", "hedged"),
            ("about 7", "hedged"),
            ("around 7", "hedged"),
            ("approximately 7", "hedged"),
            ("roughly seven", "hedged"),
            ("~7", "hedged"),
            ("≈7", "hedged"),
            ("\\approx 7", "hedged"),
            ("\\sim 7", "hedged"),
            ("at least 7", "hedged"),
            ("at most 7", "hedged"),
            ("more than 7", "hedged"),
            ("over 7", "hedged"),
            ("up to 7", "hedged"),
            ("7 or so", "hedged"),
            ("7 or more", "hedged"),
            ("7+", "hedged"),
            (">7", "hedged"),
            ("7?", "hedged"),
            ("maybe 7", "hedged"),
            ("probably 7", "hedged"),
            ("not 7", "hedged"),
            ("约7个", "hedged"),
            ("7个左右", "hedged"),
            ("7 or 8", "range"),
            ("7/8", "range"),
            ("7 apples and 3 pears", "range"),
            ("7 (seven)", "more than one"),
            ("7 7", "more than one"),
            ("3,5", "more than one"),
            ("7.5", "whole"),
            ("7%", "percentage"),
            ("-3", "negative"),
            ("", "no number"),
            ("many", "hedged"),
            ("several apples", "hedged"),
            ("apples", "no number"),
            ("99999999999999999999999", "too large"),
        ];
        for &(a, why) in cases {
            let j = CountingVerifier.judge(a, "7", None);
            assert!(!j.correct && j.score == 0.0, "{a:?} accepted");
            let reason = j.reason.unwrap_or_default();
            assert!(
                reason.contains(why),
                "{a:?}: reason {reason:?} lacks {why:?}"
            );
        }
    }

    #[test]
    fn wrong_values_and_gold() {
        assert!(!CountingVerifier.judge("8", "7", None).correct);
        assert!(!CountingVerifier.judge("seventeen", "7", None).correct);
        assert!(!CountingVerifier.judge("70", "7", None).correct);
        assert!(CountingVerifier.judge("seven", "7", None).correct);
        let j = CountingVerifier.judge("7", "a few", None);
        assert!(!j.correct && j.reason.unwrap_or_default().starts_with("gold"));
    }

    #[test]
    fn adversarial_inputs() {
        let big = "7".repeat(1 << 20);
        assert!(!CountingVerifier.judge(&big, "7", None).correct);
        let nested = "{".repeat(100) + "7" + &"}".repeat(100);
        assert!(CountingVerifier.judge(&nested, "7", None).correct);
        assert!(
            !CountingVerifier
                .judge("\u{0}\u{1}\u{ffff}", "7", None)
                .correct
        );
        assert!(!CountingVerifier.judge("\\", "7", None).correct);
        assert!(CountingVerifier.judge("7,", "7", None).correct);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = CountingVerifier;
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
