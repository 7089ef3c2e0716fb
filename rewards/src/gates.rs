//! Response gates applied to the whole response before extraction, and the
//! box-marker check for non-verifiable prompts.
//!
//! Two optional gates, both **off by default** ([`GateConfig::default`]): the
//! synthetic domains neither mix languages nor loop, and a gate that fires wrongly
//! costs reward signal. A response that fails a gate gets reward 0 with the
//! [`GateFailure`] as the reason.
//!
//! - [`LanguageMixGate`]: letters are counted by script ([`Script`]); the response
//!   fails when the second most common script's share of all letters exceeds
//!   `max_minor_share`. Code (fenced or inline backticks), math (`$…$`, `$$…$$`,
//!   `\(…\)`, `\[…\]`), LaTeX command names, markup tags (`<think>`,
//!   `<|begin_of_box|>`), digits, punctuation and Greek letters (math symbols) are not
//!   counted.
//! - [`RepetitionGate`]: the tail of the response is split into tokens (words; each
//!   CJK char; runs of one punctuation char; long runs are cut into 32-char pieces so a
//!   degenerate `aaaa…` or `!!!!…` loop is caught too); the response fails when some
//!   `ngram` of consecutive tokens occurs more than `max_repeats` times. One pass with
//!   a rolling hash: linear time, memory bounded by `tail_chars`.
//!
//! [`box_in_non_verifiable`] is the paper's rule for answers to non-verifiable
//! prompts: box markers there get the minimal reward.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::excerpt;

/// Which gates run (default: none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// The language-mix gate, when on (default off).
    pub language_mix: Option<LanguageMixGate>,
    /// The repetition gate, when on (default off).
    pub repetition: Option<RepetitionGate>,
}

/// Fails responses that mix scripts (e.g. Chinese thinking with Russian fragments).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageMixGate {
    /// Largest allowed share of letters in the second most common script
    /// (default 0.1).
    pub max_minor_share: f64,
    /// Responses with fewer counted letters always pass (default 40).
    pub min_letters: usize,
}

impl Default for LanguageMixGate {
    /// At most 10% of letters in a second script; responses under 40 letters pass.
    fn default() -> Self {
        LanguageMixGate {
            max_minor_share: 0.1,
            min_letters: 40,
        }
    }
}

/// Fails responses that end in a degenerate loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepetitionGate {
    /// Length of the repeated token sequence looked for (default 20).
    pub ngram: usize,
    /// Most occurrences allowed of any one `ngram` (default 10).
    pub max_repeats: usize,
    /// How many chars at the end of the response are examined (default 32 768).
    pub tail_chars: usize,
}

impl Default for RepetitionGate {
    /// 20-token sequences, more than 10 occurrences in the last 32 768 chars fail.
    fn default() -> Self {
        RepetitionGate {
            ngram: 20,
            max_repeats: 10,
            tail_chars: 32 * 1024,
        }
    }
}

/// The writing system of a letter, as the language-mix gate counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Script {
    /// Latin letters (ASCII and accented).
    Latin,
    /// Han, Kana and Hangul.
    Cjk,
    /// Cyrillic letters.
    Cyrillic,
    /// Any other alphabetic script.
    Other,
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Script::Latin => "Latin",
            Script::Cjk => "CJK",
            Script::Cyrillic => "Cyrillic",
            Script::Other => "other",
        })
    }
}

impl Script {
    /// The script of `c`, or `None` for non-letters and ignored letters (Greek).
    pub fn of(c: char) -> Option<Script> {
        let u = c as u32;
        if c.is_ascii_alphabetic() {
            return Some(Script::Latin);
        }
        if c.is_ascii() {
            return None;
        }
        match u {
            0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0xF900..=0xFAFF
            | 0x20000..=0x2FFFF
            | 0x3040..=0x30FF
            | 0x31F0..=0x31FF
            | 0xAC00..=0xD7AF
            | 0x1100..=0x11FF
            | 0x3130..=0x318F => Some(Script::Cjk),
            _ if !c.is_alphabetic() => None,
            0x00C0..=0x024F | 0x1E00..=0x1EFF => Some(Script::Latin),
            0x0400..=0x052F => Some(Script::Cyrillic),
            0x0370..=0x03FF => None, // Greek: math symbols
            _ => Some(Script::Other),
        }
    }
}

/// Why a response failed a gate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateFailure {
    /// Too many letters in a second script.
    #[error(
        "language mix: {:.1}% of letters are {minor} (main script {major}), above the {:.1}% limit",
        minor_share * 100.0,
        max_minor_share * 100.0
    )]
    LanguageMix {
        /// The most common script.
        major: Script,
        /// The second most common script.
        minor: Script,
        /// Its share of all counted letters.
        minor_share: f64,
        /// The configured limit.
        max_minor_share: f64,
    },
    /// Some token sequence repeats too often.
    #[error("repetition: the {ngram}-token sequence \"{text}\" occurs {repeats} times in the tail (max {max_repeats})")]
    Repetition {
        /// Tokens in the repeated sequence.
        ngram: usize,
        /// Occurrences found (at least `max_repeats + 1`).
        repeats: usize,
        /// The configured limit.
        max_repeats: usize,
        /// The repeated text (an excerpt).
        text: String,
    },
}

/// Runs the configured gates over the whole response.
pub fn check(response: &str, config: &GateConfig) -> Result<(), GateFailure> {
    if let Some(g) = &config.language_mix {
        check_language_mix(response, g)?;
    }
    if let Some(g) = &config.repetition {
        check_repetition(response, g)?;
    }
    Ok(())
}

/// Whether the response contains a box marker (`<|begin_of_box|>` or
/// `<|end_of_box|>`). For a **non-verifiable** prompt (open-ended, judged by a reward
/// model) the paper gives such a response the minimal reward: boxes belong to
/// verifiable answers only, and rewarding them elsewhere teaches the model to box
/// everything.
pub fn box_in_non_verifiable(response: &str) -> bool {
    response.contains("<|begin_of_box|>") || response.contains("<|end_of_box|>")
}

/// Letter counts per script, skipping code, math, commands and tags.
pub fn script_counts(text: &str) -> [(Script, usize); 4] {
    let mut counts = [
        (Script::Latin, 0usize),
        (Script::Cjk, 0),
        (Script::Cyrillic, 0),
        (Script::Other, 0),
    ];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            // Every span starts with an ASCII delimiter, so `i` is a char boundary here.
            if matches!(b, b'`' | b'$' | b'\\' | b'<') {
                if let Some(skip) = text.get(i..).and_then(skip_span) {
                    i += skip;
                    continue;
                }
            } else if b.is_ascii_alphabetic() {
                counts[0].1 += 1;
            }
            i += 1;
            continue;
        }
        let Some(c) = text.get(i..).and_then(|r| r.chars().next()) else {
            break;
        };
        let slot = match Script::of(c) {
            Some(Script::Latin) => Some(0),
            Some(Script::Cjk) => Some(1),
            Some(Script::Cyrillic) => Some(2),
            Some(Script::Other) => Some(3),
            None => None,
        };
        if let Some(s) = slot {
            counts[s].1 += 1;
        }
        i += c.len_utf8();
    }
    counts
}

/// Length in bytes of a code/math/command/tag span starting `rest`, if one does.
fn skip_span(rest: &str) -> Option<usize> {
    // (opening, closing) delimiters, longest first; an unclosed opening is not a span.
    const PAIRS: [(&str, &str); 6] = [
        ("```", "```"),
        ("`", "`"),
        ("$$", "$$"),
        ("$", "$"),
        ("\\(", "\\)"),
        ("\\[", "\\]"),
    ];
    let first = rest.as_bytes().first()?;
    if !matches!(first, b'`' | b'$' | b'\\' | b'<') {
        return None;
    }
    for (open, close) in PAIRS {
        if let Some(body) = rest.strip_prefix(open) {
            if let Some(end) = body.find(close) {
                return Some(open.len() + end + close.len());
            }
        }
    }
    if let Some(body) = rest.strip_prefix('\\') {
        let n = body.bytes().take_while(u8::is_ascii_alphabetic).count();
        if n > 0 {
            return Some(1 + n);
        }
    }
    if let Some(body) = rest.strip_prefix('<') {
        let lim = body.char_indices().nth(32).map_or(body.len(), |(i, _)| i);
        let head = &body[..lim];
        if let Some(end) = head.find('>') {
            if !head[..end].contains(char::is_whitespace) {
                return Some(1 + end + 1);
            }
        }
    }
    None
}

fn check_language_mix(response: &str, gate: &LanguageMixGate) -> Result<(), GateFailure> {
    let mut counts = script_counts(response);
    let total: usize = counts.iter().map(|c| c.1).sum();
    if total == 0 || total < gate.min_letters {
        return Ok(());
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let (major, minor) = (counts[0], counts[1]);
    let share = minor.1 as f64 / total as f64;
    if share > gate.max_minor_share {
        return Err(GateFailure::LanguageMix {
            major: major.0,
            minor: minor.0,
            minor_share: share,
            max_minor_share: gate.max_minor_share,
        });
    }
    Ok(())
}

/// Longest token (in chars) before it is cut.
const MAX_TOKEN_CHARS: usize = 32;

/// Token byte spans of `text`: words (alphanumeric, non-CJK), single CJK chars, runs of
/// one punctuation char; runs cut at [`MAX_TOKEN_CHARS`].
fn tokens(text: &str) -> Vec<(usize, usize)> {
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Word,
        Punct(char),
    }
    let mut out = Vec::new();
    let mut cur: Option<(Kind, usize, usize)> = None; // kind, start, chars
    for (i, c) in text.char_indices() {
        let kind = if c.is_whitespace() {
            None
        } else if Script::of(c) == Some(Script::Cjk) {
            if let Some((_, s, _)) = cur.take() {
                out.push((s, i));
            }
            out.push((i, i + c.len_utf8()));
            continue;
        } else if c.is_alphanumeric() {
            Some(Kind::Word)
        } else {
            Some(Kind::Punct(c))
        };
        match (cur, kind) {
            (Some((k, s, n)), Some(kind)) if k == kind && n < MAX_TOKEN_CHARS => {
                cur = Some((k, s, n + 1));
            }
            (prev, kind) => {
                if let Some((_, s, _)) = prev {
                    out.push((s, i));
                }
                cur = kind.map(|k| (k, i, 1));
            }
        }
    }
    if let Some((_, s, _)) = cur {
        out.push((s, text.len()));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final mix so that the polynomial rolling hash below sees well-spread values.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn check_repetition(response: &str, gate: &RepetitionGate) -> Result<(), GateFailure> {
    let n = gate.ngram.max(1);
    // The last `tail_chars` chars.
    let start = if gate.tail_chars == 0 {
        response.len()
    } else {
        response
            .char_indices()
            .rev()
            .nth(gate.tail_chars - 1)
            .map_or(0, |(i, _)| i)
    };
    let tail = &response[start..];
    let spans = tokens(tail);
    if spans.len() < n {
        return Ok(());
    }
    let hashes: Vec<u64> = spans
        .iter()
        .map(|&(s, e)| fnv1a(&tail.as_bytes()[s..e]))
        .collect();
    const BASE: u64 = 0x9E37_79B9_7F4A_7C15 | 1;
    let base_pow = (1..n).fold(1u64, |p, _| p.wrapping_mul(BASE)); // BASE^(n-1)
    let mut h = 0u64;
    for &t in &hashes[..n] {
        h = h.wrapping_mul(BASE).wrapping_add(t);
    }
    let mut seen: HashMap<u64, (usize, usize)> = HashMap::new(); // hash → (count, first)
    for k in 0..=hashes.len() - n {
        if k > 0 {
            h = h
                .wrapping_sub(hashes[k - 1].wrapping_mul(base_pow))
                .wrapping_mul(BASE)
                .wrapping_add(hashes[k + n - 1]);
        }
        let entry = seen.entry(h).or_insert((0, k));
        entry.0 += 1;
        if entry.0 > gate.max_repeats {
            let first = entry.1;
            let text = &tail[spans[first].0..spans[first + n - 1].1];
            return Err(GateFailure::Repetition {
                ngram: n,
                repeats: entry.0,
                max_repeats: gate.max_repeats,
                text: excerpt(text),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(max: f64) -> GateConfig {
        GateConfig {
            language_mix: Some(LanguageMixGate {
                max_minor_share: max,
                min_letters: 20,
            }),
            repetition: None,
        }
    }

    fn rep(ngram: usize, max_repeats: usize) -> GateConfig {
        GateConfig {
            language_mix: None,
            repetition: Some(RepetitionGate {
                ngram,
                max_repeats,
                ..RepetitionGate::default()
            }),
        }
    }

    #[test]
    fn default_is_off() {
        let c = GateConfig::default();
        assert!(c.language_mix.is_none() && c.repetition.is_none());
        let loop_text = "again ".repeat(10_000) + "Привет 你好";
        assert_eq!(check(&loop_text, &c), Ok(()));
        let parsed: GateConfig =
            serde_json::from_str(r#"{"repetition": {"ngram": 8}}"#).expect("config parses");
        assert_eq!(parsed.repetition.map(|r| r.max_repeats), Some(10));
        assert!(serde_json::from_str::<GateConfig>(r#"{"languages": {}}"#).is_err());
    }

    #[test]
    fn language_mix_table() {
        let cases: &[(&str, bool)] = &[
            ("The quick brown fox jumps over the lazy dog, twice.", true),
            ("这是一个关于数学问题的详细推理过程我们需要计算面积和周长的具体数值", true),
            // a few Latin letters in Chinese text: under 10%
            ("这是一个关于数学问题的详细推理过程我们需要计算面积和周长的具体数值 ok", true),
            // Chinese thinking drifting into Russian
            ("这是一个关于数学问题的详细推理过程 Давайте посчитаем площадь фигуры", false),
            ("The area is computed as follows and Давайте посчитаем площадь", false),
            // math and code do not count
            (
                "这是一个关于数学问题的详细推理过程我们需要计算 $\\frac{area}{perimeter} = xyz$ 和 `let width = height * ratio;` 的值",
                true,
            ),
            (
                "<think>这是一个关于数学问题的详细推理过程我们需要计算面积</think><answer><|begin_of_box|>42<|end_of_box|></answer>",
                true,
            ),
            // Greek letters in physics are ignored
            ("The angle θ and wavelength λ satisfy αβγδεζηθικλμνξοπρστυφχψω relations", true),
            // short responses always pass
            ("你好 hello", true),
        ];
        for &(text, ok) in cases {
            let r = check(text, &mix(0.1));
            assert_eq!(r.is_ok(), ok, "{text:?}: {r:?}");
        }
        let err = check(cases[3].0, &mix(0.1)).expect_err("mixed");
        let msg = err.to_string();
        assert!(msg.contains("Cyrillic") && msg.contains("CJK"), "{msg}");
        assert!(check(cases[3].0, &mix(0.9)).is_ok());
    }

    #[test]
    fn repetition_table() {
        let normal = "To find the area we multiply the width by the height. The width is 3 and \
                      the height is 4, so the area is 12. We check: 3 times 4 is 12.";
        let cases: Vec<(String, bool)> = vec![
            (normal.to_string(), true),
            (normal.repeat(3), true),
            (
                format!(
                    "{normal} {}",
                    "Wait, let me recompute the area. ".repeat(40)
                ),
                false,
            ),
            ("a".repeat(100_000), false),
            ("!".repeat(5_000), false),
            ("好".repeat(1_000), false),
            ("我们再算一次面积。".repeat(30), false),
            ("-".repeat(80) + "\n| a | b |\n" + &"-".repeat(80), true),
            (String::new(), true),
        ];
        for (text, ok) in &cases {
            let r = check(text, &rep(8, 10));
            assert_eq!(r.is_ok(), *ok, "{}: {r:?}", excerpt(text));
        }
        let err = check(&cases[2].0, &rep(8, 10)).expect_err("loop");
        assert!(err.to_string().contains("repetition"), "{err}");
        // A loop before a long clean tail is outside the examined window.
        let clean: String = (0..3_000).map(|i| format!("step {i} ")).collect();
        let old_loop = "again ".repeat(1_000) + &clean;
        let gate = |tail_chars| GateConfig {
            language_mix: None,
            repetition: Some(RepetitionGate {
                ngram: 4,
                max_repeats: 10,
                tail_chars,
            }),
        };
        assert!(check(&old_loop, &gate(10_000)).is_ok());
        assert!(check(&old_loop, &gate(1 << 20)).is_err());
    }

    #[test]
    fn tokens_split_runs() {
        let t = "ab  c!!你好";
        let spans: Vec<&str> = tokens(t).iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(spans, vec!["ab", "c", "!!", "你", "好"]);
        let long = "x".repeat(70);
        assert_eq!(tokens(&long).len(), 3);
    }

    #[test]
    fn box_markers() {
        assert!(box_in_non_verifiable(
            "<answer><|begin_of_box|>x<|end_of_box|></answer>"
        ));
        assert!(box_in_non_verifiable("stray <|end_of_box|>"));
        assert!(!box_in_non_verifiable(
            "<answer>A poem about spring.</answer>"
        ));
        assert!(!box_in_non_verifiable("\\boxed{3}"));
    }

    #[test]
    fn adversarial_inputs() {
        let both = GateConfig {
            language_mix: Some(LanguageMixGate::default()),
            repetition: Some(RepetitionGate::default()),
        };
        let junk: Vec<String> = vec![
            "$".repeat(1 << 20),
            "`".repeat(1 << 20),
            "\\".repeat(1 << 20),
            "<".repeat(1 << 20),
            "[".repeat(100_000),
            "$a".repeat(100_000),
            (0..200_000u32).filter_map(char::from_u32).collect(),
        ];
        for j in &junk {
            let _ = check(j, &both);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,200}", s in "[a-z $`<>|\\\\()\\[\\]你好Привет]{0,200}") {
            let both = GateConfig {
                language_mix: Some(LanguageMixGate { max_minor_share: 0.1, min_letters: 1 }),
                repetition: Some(RepetitionGate { ngram: 2, max_repeats: 3, tail_chars: 50 }),
            };
            let _ = check(&a, &both);
            let _ = check(&s, &both);
            let _ = script_counts(&a);
        }
    }
}
