//! The `ocr` verifier: text recognition scored by normalised edit distance
//! (paper Table 1).
//!
//! `score = 1 − edit_distance(a, g) / max(len(a), len(g))`, where `a` and `g` are the
//! answer and gold with **all whitespace removed**, lengths and distance counted in
//! Unicode chars (Levenshtein: insertions, deletions, substitutions of one char). Two
//! empty strings score 1. The answer is correct only at score 1.
//!
//! Comparison is case-sensitive by default ([`OcrVerifier::case_sensitive`]).
//!
//! Work is bounded: texts with more than [`OcrVerifier::max_chars`] chars (after
//! removing whitespace) score 0 with a reason; the common prefix and suffix are
//! skipped; and when the remaining table would exceed [`OcrVerifier::max_cells`]
//! cells, a banded computation gives the exact distance if it is small, or else an
//! upper bound on it (the cost of a real alignment), so the score is then a
//! conservative lower bound and the `approximate` sub-score is 1. Memory is linear in
//! the shorter text.

use crate::{excerpt, Judgement, Tolerance, Verifier};

/// The `ocr` verifier (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct OcrVerifier {
    /// Compare letters case-sensitively (default `true`).
    pub case_sensitive: bool,
    /// Longest text (in chars, whitespace removed) compared; longer scores 0
    /// (default 16 384).
    pub max_chars: usize,
    /// Most dynamic-programming cells computed exactly (default 4 194 304, a few ms).
    pub max_cells: usize,
}

impl Default for OcrVerifier {
    /// Case-sensitive; 16 384 chars; 4 Mi cells.
    fn default() -> Self {
        OcrVerifier {
            case_sensitive: true,
            max_chars: 16_384,
            max_cells: 1 << 22,
        }
    }
}

impl OcrVerifier {
    /// A case-insensitive OCR verifier (otherwise the defaults).
    pub fn case_insensitive() -> Self {
        OcrVerifier {
            case_sensitive: false,
            ..Self::default()
        }
    }

    /// The chars of `s` without whitespace (lowercased when case-insensitive), or
    /// `None` when there are more than `max_chars`.
    fn normalize(&self, s: &str) -> Option<Vec<char>> {
        let mut out = Vec::new();
        for c in s.chars().filter(|c| !c.is_whitespace()) {
            if self.case_sensitive {
                out.push(c);
            } else {
                out.extend(c.to_lowercase());
            }
            if out.len() > self.max_chars {
                return None;
            }
        }
        Some(out)
    }
}

impl Verifier for OcrVerifier {
    fn name(&self) -> &str {
        "ocr"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let Some(a) = self.normalize(answer) else {
            return Judgement::wrong(format!(
                "answer longer than {} chars (whitespace removed)",
                self.max_chars
            ));
        };
        let Some(g) = self.normalize(gold) else {
            return Judgement::wrong(format!(
                "gold longer than {} chars (whitespace removed)",
                self.max_chars
            ));
        };
        let longest = a.len().max(g.len());
        if longest == 0 {
            return Judgement::right().with("edit_distance", 0.0);
        }
        let (distance, exact) = edit_distance_bounded(&a, &g, self.max_cells);
        let score = 1.0 - distance as f64 / longest as f64;
        let mut j = Judgement::partial(
            score,
            Some(format!(
                "edit distance {}{distance} over {longest} chars: answer \"{}\" vs gold \"{}\"",
                if exact { "" } else { "at most " },
                excerpt(answer),
                excerpt(gold)
            )),
        )
        .with("edit_distance", distance as f64);
        if !exact {
            j = j.with("approximate", 1.0);
        }
        j
    }
}

/// Levenshtein distance between `a` and `b` within a budget of `max_cells` table
/// cells. Returns `(distance, true)` when exact, or `(upper_bound, false)` when the
/// budget only allowed a bound (the cost of an alignment inside the band, or of
/// position-wise substitutions plus the length difference, whichever is lower).
pub fn edit_distance_bounded(a: &[char], b: &[char], max_cells: usize) -> (usize, bool) {
    // Strip the common prefix and suffix: they cost nothing.
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    // Make `b` the shorter one: memory is O(len(b)).
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    if b.is_empty() {
        return (a.len(), true);
    }
    if a.len().saturating_mul(b.len()) <= max_cells {
        return (levenshtein(a, b), true);
    }
    // Position-wise substitutions plus the length difference: an upper bound.
    let hamming = a.iter().zip(b).filter(|(x, y)| x != y).count() + (a.len() - b.len());
    // Banded: cells with |i − j| ≤ k, where (2k + 1) · len(a) ≤ max_cells.
    let k = (max_cells / a.len()).saturating_sub(1) / 2;
    if k < a.len() - b.len() {
        return (hamming, false);
    }
    let d = levenshtein_banded(a, b, k);
    if d <= k {
        (d, true)
    } else {
        (d.min(hamming), false)
    }
}

/// Full Levenshtein distance, one row of `len(b) + 1` cells.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let up = row[j + 1];
            let cost = usize::from(ca != b[j]);
            row[j + 1] = (diag + cost).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// The cheapest alignment of `a` (the longer) and `b` that stays within
/// `|i − j| ≤ k`: the exact Levenshtein distance when that is at most `k`, else an
/// upper bound on it. Needs `len(a) − len(b) ≤ k`.
fn levenshtein_banded(a: &[char], b: &[char], k: usize) -> usize {
    const INF: usize = usize::MAX / 4;
    let m = b.len();
    let mut prev = vec![INF; m + 1];
    let mut cur = vec![INF; m + 1];
    for (j, cell) in prev.iter_mut().enumerate().take(k.min(m) + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        let lo = i.saturating_sub(k);
        let hi = (i + k).min(m);
        if lo > hi {
            return a.len().max(m); // unreachable when len(a) − len(b) ≤ k
        }
        if lo == 0 {
            cur[0] = i;
        } else {
            cur[lo - 1] = INF;
        }
        for j in lo.max(1)..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        if hi < m {
            cur[hi + 1] = INF;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m].min(a.len().max(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, f64)] = &[
            ("hello world", "hello world", 1.0),
            ("helloworld", "hello world", 1.0),
            ("hello\n\tworld ", " hello world", 1.0),
            ("", "", 1.0),
            ("  ", "", 1.0),
            ("hallo", "hello", 0.8),
            ("Hello", "hello", 0.8),
            ("kitten", "sitting", 1.0 - 3.0 / 7.0),
            ("", "abcd", 0.0),
            ("abcd", "", 0.0),
            ("abcdefgh", "abcd", 0.5),
            ("中文识别", "中文識別", 0.5),
            ("ab", "ba", 0.0),
        ];
        let v = OcrVerifier::default();
        for &(a, g, want) in cases {
            let j = v.judge(a, g, None);
            assert!((j.score - want).abs() < 1e-12, "{a:?} vs {g:?}: {j:?}");
            assert_eq!(j.correct, want == 1.0);
            assert_eq!(j.reason.is_some(), want < 1.0);
        }
    }

    #[test]
    fn case_insensitive_option() {
        let v = OcrVerifier::case_insensitive();
        assert!(v.judge("HELLO World", "helloworld", None).correct);
        assert!(
            !OcrVerifier::default()
                .judge("HELLO World", "helloworld", None)
                .correct
        );
    }

    #[test]
    fn banded_matches_full() {
        let pairs = [
            ("kitten", "sitting"),
            ("abcdefghij", "abxdefghiyj"),
            ("aaaaaaaaab", "baaaaaaaaa"),
            ("the quick brown fox", "teh quikc borwn fx"),
            ("abc", "xyz"),
        ];
        for (x, y) in pairs {
            let (a, b) = (chars(x), chars(y));
            let full = levenshtein(&a, &b).min(levenshtein(&b, &a));
            for k in 0..12 {
                let (long, short) = if a.len() >= b.len() {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                if long.len() - short.len() > k {
                    continue;
                }
                let d = levenshtein_banded(long, short, k);
                if d <= k {
                    assert_eq!(d, full, "{x} {y} k={k}");
                } else {
                    assert!(
                        full > k && d >= full,
                        "{x} {y} k={k}: full {full}, band {d}"
                    );
                }
            }
            // A tiny budget still gives an exact answer or a valid upper bound.
            for budget in [0, 5, 20, 50, 1000] {
                let (d, exact) = edit_distance_bounded(&a, &b, budget);
                if exact {
                    assert_eq!(d, full);
                } else {
                    assert!(d >= full, "{x} {y} budget {budget}");
                }
            }
        }
    }

    #[test]
    fn long_inputs_are_bounded() {
        let v = OcrVerifier::default();
        let big = "x".repeat(1 << 20);
        let j = v.judge(&big, "x", None);
        assert_eq!(j.score, 0.0);
        assert!(j.reason.as_deref().unwrap_or("").contains("longer than"));
        // Two long, different texts: banded, approximate lower bound on the distance.
        let a: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let b: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 7) as u8))
            .collect();
        let j = v.judge(&a, &b, None);
        assert!(j.score < 1.0 && !j.correct);
        // Near-identical long texts: exact via prefix/suffix trimming.
        let mut c = a.clone();
        c.replace_range(5000..5001, "#");
        let j = v.judge(&c, &a, None);
        assert!((j.score - (1.0 - 1.0 / 10_000.0)).abs() < 1e-12);
        assert!(!j.subscores.contains_key("approximate"));
        let nested = "[".repeat(100_000);
        assert_eq!(v.judge(&nested, "[", None).score, 0.0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = OcrVerifier::default();
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
