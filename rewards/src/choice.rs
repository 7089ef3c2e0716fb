//! The `choice` verifier: multiple-choice answers, compared exactly as sets of option
//! letters (paper Table 1).
//!
//! Both gold and answer are read as a set of letters `A`–`Z` (case-insensitive):
//!
//! - wrappers are dropped first: `$`, `*` (Markdown bold), braces and LaTeX commands
//!   (`\text{B}`, `\textbf{B}`, `\boxed{B}`);
//! - then leading phrases: `Answer:`, `The answer is`, `The correct answer is`,
//!   `Final answer:`, `Option`, `Choice` (repeatable: `Answer: Option (B)`);
//! - then one letter or a list of letters: `B`, `b`, `(B)`, `[B]`, `B)`, `B.`, `A, C`,
//!   `A and C`, `A/C`, or a compact run of distinct capitals (`AC`);
//! - after the letters may come option text, but only after a delimiter (`B. 42`,
//!   `B: 42`, `B) 42`, `(B) 42`, `B, because …`). A bare letter followed by a word
//!   (`B is right`, `I think B`, `a dog`) is rejected, and a letter inside a word
//!   (`Because`) is never read as an option.
//!
//! Rules: an answer that names alternatives (`A or B`) is wrong ("hedged answer");
//! naming more than one letter when the gold has one is wrong; for a multi-select
//! gold (`AC`, `A,C`) the sets must be equal. Option text without its letter is wrong:
//! the verifier does not see the options. Answers longer than [`MAX_ANSWER_BYTES`] are
//! rejected; work is linear in the input.

use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Longest answer (in bytes) read as a choice; longer answers are wrong.
pub const MAX_ANSWER_BYTES: usize = 4096;

/// The `choice` verifier (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChoiceVerifier;

impl Verifier for ChoiceVerifier {
    fn name(&self) -> &str {
        "choice"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let g = match parse_letters(gold) {
            Ok(g) => g,
            Err(e) => return Judgement::wrong(format!("gold \"{}\": {e}", excerpt(gold))),
        };
        let a = match parse_letters(answer) {
            Ok(a) => a,
            Err(e) => return Judgement::wrong(format!("{e}: \"{}\"", excerpt(answer))),
        };
        if a == g {
            return Judgement::right();
        }
        if a.count_ones() > 1 && g.count_ones() == 1 {
            return Judgement::wrong(format!(
                "answer names more than one option ({}), gold is {}",
                letters(a),
                letters(g)
            ));
        }
        Judgement::wrong(format!("answer {} != gold {}", letters(a), letters(g)))
    }
}

/// The letters of a mask, e.g. `A,C`.
fn letters(mask: u32) -> String {
    (0..26u8)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| char::from(b'A' + i).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Drops `$`, `*`, braces and LaTeX command names.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' | '*' | '{' | '}' => {}
            '\\' => {
                while chars.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    chars.next();
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// Leading phrases stripped before the letters (longest first where they overlap).
const PREFIXES: &[&str] = &[
    "the correct answer is",
    "the correct option is",
    "the correct choice is",
    "the answer is",
    "the final answer is",
    "correct answer",
    "final answer",
    "answer is",
    "answers",
    "answer",
    "options",
    "option",
    "choices",
    "choice",
];

/// Strips one leading phrase (whole words, case-insensitive) and a following `:`.
fn strip_prefix_phrase(s: &str) -> Option<&str> {
    let s = s.trim_start();
    for p in PREFIXES {
        let Some(head) = s.get(..p.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(p) {
            continue;
        }
        let rest = &s[p.len()..];
        if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        let rest = rest.trim_start();
        let rest = rest.strip_prefix([':', '：']).unwrap_or(rest);
        return Some(rest);
    }
    None
}

/// One option item at the start of `s`: `B`, `(B)`, `[B]`, `B)`. Returns the letter
/// index, whether it was bracketed and the rest.
fn parse_item(s: &str) -> Option<(u8, bool, &str)> {
    let (open, s) = match s.chars().next()? {
        '(' | '（' => (Some(')'), &s[s.chars().next()?.len_utf8()..]),
        '[' => (Some(']'), &s[1..]),
        _ => (None, s),
    };
    let s = if open.is_some() { s.trim_start() } else { s };
    let c = s.chars().next()?;
    if !c.is_ascii_alphabetic() {
        return None;
    }
    let letter = c.to_ascii_uppercase() as u8 - b'A';
    let rest = &s[1..];
    match open {
        Some(close) => {
            let rest = rest.trim_start();
            let rest = rest
                .strip_prefix(close)
                .or_else(|| rest.strip_prefix('）').filter(|_| close == ')'))?;
            Some((letter, true, rest))
        }
        None => {
            if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
                return None; // a letter inside a word: `Because`
            }
            match rest.strip_prefix(')') {
                Some(r) => Some((letter, true, r)),
                None => Some((letter, false, rest)),
            }
        }
    }
}

/// A separator between two letters: `,`, `;`, `/`, `&`, `and`, `or`. Returns whether
/// it was `or` and the rest.
fn parse_separator(s: &str) -> Option<(bool, &str)> {
    let t = s.trim_start();
    if let Some(r) = t.strip_prefix([',', ';', '/', '&', '、', '，']) {
        return Some((false, r.trim_start()));
    }
    for (word, is_or) in [("and", false), ("or", true)] {
        if let Some(head) = t.get(..word.len()) {
            let rest = &t[word.len()..];
            if head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace) {
                return Some((is_or, rest.trim_start()));
            }
        }
    }
    None
}

/// Reads `s` as a set of option letters (bit `i` is letter `A + i`).
fn parse_letters(s: &str) -> Result<u32, String> {
    if s.len() > MAX_ANSWER_BYTES {
        return Err(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
    }
    let cleaned = clean(s);
    let mut t = cleaned.trim();
    for _ in 0..4 {
        match strip_prefix_phrase(t) {
            Some(r) => t = r.trim(),
            None => break,
        }
    }
    let t = t.trim_end_matches(['.', '。']).trim();
    // Compact multi-select: distinct capitals only (`AC`, `BDE`).
    if t.len() >= 2 && t.len() <= 26 && t.bytes().all(|b| b.is_ascii_uppercase()) {
        let mut mask = 0u32;
        for b in t.bytes() {
            let bit = 1u32 << (b - b'A');
            if mask & bit != 0 {
                return Err("not an option letter".to_string());
            }
            mask |= bit;
        }
        return Ok(mask);
    }
    let Some((first, mut bracketed, mut rest)) = parse_item(t) else {
        return Err("no option letter".to_string());
    };
    let mut mask = 1u32 << first;
    while let Some((is_or, after)) = parse_separator(rest) {
        let Some((letter, b, r)) = parse_item(after) else {
            break; // the separator starts option text: `B, because …`
        };
        if is_or {
            return Err("hedged answer: names alternatives".to_string());
        }
        mask |= 1 << letter;
        bracketed = b;
        rest = r;
    }
    let rest = rest.trim_start();
    let delimited = rest.is_empty()
        || bracketed
        || rest.starts_with([
            '.', ':', ',', ')', ']', '-', '–', '—', ';', '：', '，', '。', '、',
        ]);
    if !delimited {
        return Err("no option letter (a bare letter followed by text)".to_string());
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, &str)] = &[
            ("B", "B"),
            ("b", "B"),
            ("(B)", "B"),
            ("( b )", "B"),
            ("[B]", "B"),
            ("B)", "B"),
            ("B.", "B"),
            ("\\text{B}", "B"),
            ("\\textbf{B}", "B"),
            ("$\\boxed{B}$", "B"),
            ("**B**", "B"),
            ("Option B", "B"),
            ("option (b)", "B"),
            ("Answer: B", "B"),
            ("answer: option B", "B"),
            ("The answer is (B).", "B"),
            ("The correct answer is B", "B"),
            ("B. 42 meters", "B"),
            ("B: the red one", "B"),
            ("B) the red one", "B"),
            ("(B) the red one", "B"),
            ("B, because it is red", "B"),
            ("A, Cat", "A"),
            ("B", "(B)"),
            ("B", "B. 42 meters"),
            ("b", "b"),
            ("AC", "AC"),
            ("A, C", "AC"),
            ("A and C", "A,C"),
            ("C, A", "A, C"),
            ("(A) and (C)", "AC"),
            ("A/C", "AC"),
            ("Answer: A, C", "A,C"),
            ("（B）", "B"),
        ];
        for &(a, g) in cases {
            let j = ChoiceVerifier.judge(a, g, None);
            assert!(j.correct, "{a:?} vs gold {g:?}: {j:?}");
        }
    }

    #[test]
    fn rejected_forms() {
        let cases: &[(&str, &str, &str)] = &[
            ("C", "B", "!="),
            ("(C)", "B", "!="),
            ("Because", "B", "no option letter"),
            ("Blue", "B", "no option letter"),
            ("42 meters", "B", "no option letter"),
            ("the red one", "B", "no option letter"),
            ("", "B", "no option letter"),
            ("B is correct", "B", "no option letter"),
            ("I think B", "B", "no option letter"),
            ("a dog", "A", "no option letter"),
            ("A and B", "B", "more than one option"),
            ("A, B", "B", "more than one option"),
            ("AB", "B", "more than one option"),
            ("A or B", "B", "hedged"),
            ("A", "AC", "!="),
            ("A, B", "AC", "!="),
            ("ABC", "AC", "!="),
            ("AA", "A", "not an option letter"),
        ];
        for &(a, g, why) in cases {
            let j = ChoiceVerifier.judge(a, g, None);
            assert!(!j.correct && j.score == 0.0, "{a:?} vs {g:?} accepted");
            let reason = j.reason.unwrap_or_default();
            assert!(
                reason.contains(why),
                "{a:?}: reason {reason:?} lacks {why:?}"
            );
        }
    }

    #[test]
    fn adversarial_inputs() {
        let big = "B".repeat(1 << 20);
        assert!(!ChoiceVerifier.judge(&big, "B", None).correct);
        let nested = "(".repeat(2000) + "B" + &")".repeat(2000);
        assert!(!ChoiceVerifier.judge(&nested, "B", None).correct);
        for junk in [
            "\u{0}", "(", "[", "\\", "((", "B\u{301}", "Ω", "（", "and", "or B",
        ] {
            let _ = ChoiceVerifier.judge(junk, "B", None);
        }
        assert!(!ChoiceVerifier.judge("B", "Because", None).correct);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = ChoiceVerifier;
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
