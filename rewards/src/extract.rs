//! Finding the final answer in a response: the strict GLM-4.1V format gate, and the
//! `glm45v`, `boxed` and `lenient` modes ([`ExtractMode`], [`extract`]).
//!
//! A well-formed GLM-4.1V response is, and is nothing but:
//!
//! ```text
//! <think>THINKING</think> <answer>… <|begin_of_box|>X<|end_of_box|> …</answer>
//! ```
//!
//! with optional whitespace before `<think>`, between `</think>` and `<answer>`, and
//! after `</answer>`. [`extract_glm`] returns the trimmed `X` or a [`FormatError`]
//! naming the first thing that is wrong. Every mode runs in time linear in the length
//! of the response, uses no recursion and never panics.

/// Opens the thinking section.
pub const THINK_OPEN: &str = "<think>";
/// Closes the thinking section.
pub const THINK_CLOSE: &str = "</think>";
/// Opens the answer section.
pub const ANSWER_OPEN: &str = "<answer>";
/// Closes the answer section.
pub const ANSWER_CLOSE: &str = "</answer>";
/// Opens the box holding the final answer.
pub const BOX_OPEN: &str = "<|begin_of_box|>";
/// Closes the box holding the final answer.
pub const BOX_CLOSE: &str = "<|end_of_box|>";

/// The six structural markers, none of which may appear inside the thinking text.
pub const MARKERS: [&str; 6] = [
    THINK_OPEN,
    THINK_CLOSE,
    ANSWER_OPEN,
    ANSWER_CLOSE,
    BOX_OPEN,
    BOX_CLOSE,
];

use std::borrow::Cow;

/// LaTeX box commands that a model may emit instead of the box tokens.
const LATEX_BOXES: [&str; 2] = ["\\boxed{", "\\fbox{"];

/// How the final answer is found in a response.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ExtractMode {
    /// The strict GLM-4.1V gate ([`extract_glm`]): the training format.
    #[default]
    Glm,
    /// As [`ExtractMode::Glm`], but also accepts the GLM-4.5V form without
    /// `<answer>` tags: `<think>…</think>…<|begin_of_box|>X<|end_of_box|>…`.
    Glm45v,
    /// The last `\boxed{…}` or `\fbox{…}` (nested braces allowed), or the last
    /// `<|begin_of_box|>…<|end_of_box|>`, whichever comes later.
    Boxed,
    /// For scoring other models: a box as in [`ExtractMode::Boxed`]; else the text
    /// after the last "final answer is" / "answer:" phrase; else the last number or
    /// expression in the response.
    Lenient,
}

impl ExtractMode {
    /// Every mode, in the order they are documented.
    pub const ALL: [ExtractMode; 4] = [
        ExtractMode::Glm,
        ExtractMode::Glm45v,
        ExtractMode::Boxed,
        ExtractMode::Lenient,
    ];

    /// The mode's name as written in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExtractMode::Glm => "glm",
            ExtractMode::Glm45v => "glm45v",
            ExtractMode::Boxed => "boxed",
            ExtractMode::Lenient => "lenient",
        }
    }
}

impl std::str::FromStr for ExtractMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown extraction mode `{s}` (known: glm, glm45v, boxed, lenient)")
            })
    }
}

/// Finds the final answer in `response` by `mode`.
pub fn extract(response: &str, mode: ExtractMode) -> Result<Cow<'_, str>, FormatError> {
    match mode {
        ExtractMode::Glm => extract_glm(response).map(Cow::Borrowed),
        ExtractMode::Glm45v => glm(response, true).map(Cow::Borrowed),
        ExtractMode::Boxed => extract_boxed(response),
        ExtractMode::Lenient => extract_lenient(response),
    }
}

/// Why a response failed the GLM format gate. Byte offsets are into the full
/// response as given to [`extract_glm`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The response (after leading whitespace) does not start with `<think>`.
    #[error("response must start with `<think>` (after optional whitespace)")]
    MissingThinkOpen,
    /// No `</think>` follows the opening `<think>`.
    #[error("no `</think>` closes the `<think>` opened at byte {think_at}")]
    MissingThinkClose {
        /// Byte offset of the opening `<think>`.
        think_at: usize,
    },
    /// One of the six structural markers appears inside the thinking text.
    #[error("marker `{marker}` inside the thinking text at byte {at}")]
    MarkerInThinking {
        /// The marker found.
        marker: &'static str,
        /// Byte offset of the marker.
        at: usize,
    },
    /// Something other than whitespace and `<answer>` follows `</think>`.
    #[error("expected `<answer>` after `</think>` (byte {at}), found other text")]
    MissingAnswerOpen {
        /// Byte offset just after `</think>` and any whitespace.
        at: usize,
    },
    /// No `</answer>` closes the answer section.
    #[error("no `</answer>` closes the `<answer>` opened at byte {answer_at}")]
    MissingAnswerClose {
        /// Byte offset of the opening `<answer>`.
        answer_at: usize,
    },
    /// Non-whitespace text follows `</answer>`.
    #[error("{len} bytes of text after `</answer>` (starting at byte {at})")]
    TrailingText {
        /// Byte offset of the first non-whitespace byte after `</answer>`.
        at: usize,
        /// Length in bytes of the trailing text (trimmed).
        len: usize,
    },
    /// A `<think>`, `</think>` or second `<answer>` tag inside the answer.
    #[error("tag `{tag}` nested inside the answer at byte {at}")]
    NestedTag {
        /// The tag found.
        tag: &'static str,
        /// Byte offset of the tag.
        at: usize,
    },
    /// A LaTeX `\boxed{` or `\fbox{` in the answer instead of the box tokens.
    #[error("LaTeX `{command}` at byte {at} in the answer; use `<|begin_of_box|>…<|end_of_box|>`")]
    LatexBox {
        /// The LaTeX command found (e.g. `\boxed{`).
        command: &'static str,
        /// Byte offset of the command.
        at: usize,
    },
    /// The answer has no `<|begin_of_box|>`/`<|end_of_box|>` pair.
    #[error("no `<|begin_of_box|>…<|end_of_box|>` in the answer")]
    NoBox,
    /// The answer has several balanced boxes.
    #[error("{count} boxes in the answer; exactly one is required")]
    MultipleBoxes {
        /// How many boxes (begin/end pairs) were found.
        count: usize,
    },
    /// The numbers of `<|begin_of_box|>` and `<|end_of_box|>` markers differ.
    #[error("unbalanced box markers: {begins} `<|begin_of_box|>` vs {ends} `<|end_of_box|>`")]
    UnbalancedBox {
        /// Count of `<|begin_of_box|>`.
        begins: usize,
        /// Count of `<|end_of_box|>`.
        ends: usize,
    },
    /// `<|end_of_box|>` comes before `<|begin_of_box|>`.
    #[error(
        "`<|end_of_box|>` at byte {end_at} comes before `<|begin_of_box|>` at byte {begin_at}"
    )]
    BoxEndBeforeBegin {
        /// Byte offset of `<|begin_of_box|>`.
        begin_at: usize,
        /// Byte offset of `<|end_of_box|>`.
        end_at: usize,
    },
    /// The box holds only whitespace.
    #[error("the box at byte {at} is empty")]
    EmptyBox {
        /// Byte offset of `<|begin_of_box|>`.
        at: usize,
    },
    /// `boxed` extraction: no `\boxed{…}`, `\fbox{…}` or box tokens in the response.
    #[error(
        "no `\\boxed{{…}}`, `\\fbox{{…}}` or `<|begin_of_box|>…<|end_of_box|>` in the response"
    )]
    NoBoxAnywhere,
    /// `boxed` extraction: the last `\boxed{` is never closed.
    #[error("the `{command}` at byte {at} is never closed")]
    UnclosedLatexBox {
        /// The LaTeX command (e.g. `\boxed{`).
        command: &'static str,
        /// Byte offset of the command.
        at: usize,
    },
    /// `lenient` extraction: no box, answer phrase, number or expression found.
    #[error("no final answer found (no box, no \"answer:\" phrase, no number or expression)")]
    NoAnswerFound,
}

/// Byte offset of `sub` within `whole`; `sub` must be a subslice of `whole`.
fn offset_in(whole: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// The earliest occurrence in `hay` of any of `needles`: `(byte offset, needle)`.
fn first_of(hay: &str, needles: &[&'static str]) -> Option<(usize, &'static str)> {
    needles
        .iter()
        .filter_map(|n| hay.find(n).map(|i| (i, *n)))
        .min_by_key(|(i, _)| *i)
}

/// The strict GLM-4.1V format gate: returns the trimmed text inside the single
/// `<|begin_of_box|>…<|end_of_box|>` of the answer, or the first [`FormatError`] found.
///
/// Checks, in order: `<think>` at the start, `</think>`, no marker inside the thinking
/// text, `<answer>` right after `</think>`, `</answer>`, nothing after `</answer>`, no
/// nested `<think>`/`</think>`/`<answer>` in the answer, no LaTeX `\boxed{`/`\fbox{`,
/// exactly one box with its begin before its end, and a non-empty box.
///
/// Linear in `response.len()`, allocation-free, never panics.
pub fn extract_glm(response: &str) -> Result<&str, FormatError> {
    glm(response, false)
}

/// The GLM gate, optionally accepting the GLM-4.5V form without `<answer>` tags.
fn glm(response: &str, allow_bare_answer: bool) -> Result<&str, FormatError> {
    let start = response.trim_start();
    let think_at = offset_in(response, start);
    let after_open = start
        .strip_prefix(THINK_OPEN)
        .ok_or(FormatError::MissingThinkOpen)?;
    let base = think_at + THINK_OPEN.len();

    // Thinking text: everything up to the first `</think>`.
    let close_rel = after_open.find(THINK_CLOSE);
    let think_end = close_rel.unwrap_or(after_open.len());
    let thinking = &after_open[..think_end];
    if let Some((i, marker)) = first_of(thinking, &MARKERS) {
        return Err(FormatError::MarkerInThinking {
            marker,
            at: base + i,
        });
    }
    let close_rel = close_rel.ok_or(FormatError::MissingThinkClose { think_at })?;

    // `<answer>` after optional whitespace.
    let after_think = &after_open[close_rel + THINK_CLOSE.len()..];
    let answer_start = after_think.trim_start();
    let answer_at = offset_in(response, answer_start);
    let Some(answer_body) = answer_start.strip_prefix(ANSWER_OPEN) else {
        if allow_bare_answer {
            // GLM-4.5V form: the rest of the response is the answer.
            return answer_box(
                response,
                after_think,
                &[THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE],
            );
        }
        return Err(FormatError::MissingAnswerOpen { at: answer_at });
    };

    // The answer runs up to the first `</answer>`; only whitespace may follow.
    let answer_close = answer_body
        .find(ANSWER_CLOSE)
        .ok_or(FormatError::MissingAnswerClose { answer_at })?;
    let answer = &answer_body[..answer_close];
    let trailing = answer_body[answer_close + ANSWER_CLOSE.len()..].trim();
    if !trailing.is_empty() {
        return Err(FormatError::TrailingText {
            at: offset_in(response, trailing),
            len: trailing.len(),
        });
    }
    answer_box(response, answer, &[THINK_OPEN, THINK_CLOSE, ANSWER_OPEN])
}

/// The single box inside an answer section: no tag of `forbidden` nested, no LaTeX
/// box, exactly one non-empty box with its begin before its end.
fn answer_box<'a>(
    response: &'a str,
    answer: &'a str,
    forbidden: &[&'static str],
) -> Result<&'a str, FormatError> {
    let body_at = offset_in(response, answer);
    if let Some((i, tag)) = first_of(answer, forbidden) {
        return Err(FormatError::NestedTag {
            tag,
            at: body_at + i,
        });
    }
    if let Some((i, command)) = first_of(answer, &LATEX_BOXES) {
        return Err(FormatError::LatexBox {
            command,
            at: body_at + i,
        });
    }

    let begins = answer.matches(BOX_OPEN).count();
    let ends = answer.matches(BOX_CLOSE).count();
    if begins != ends {
        return Err(FormatError::UnbalancedBox { begins, ends });
    }
    match begins {
        0 => return Err(FormatError::NoBox),
        1 => {}
        count => return Err(FormatError::MultipleBoxes { count }),
    }
    let (Some(b), Some(e)) = (answer.find(BOX_OPEN), answer.find(BOX_CLOSE)) else {
        // Unreachable given the counts above, but never panic.
        return Err(FormatError::NoBox);
    };
    if e < b + BOX_OPEN.len() {
        return Err(FormatError::BoxEndBeforeBegin {
            begin_at: body_at + b,
            end_at: body_at + e,
        });
    }
    let boxed = answer[b + BOX_OPEN.len()..e].trim();
    if boxed.is_empty() {
        return Err(FormatError::EmptyBox { at: body_at + b });
    }
    Ok(boxed)
}

/// The part of a response after its last `</think>` (the whole response if none):
/// `boxed` and `lenient` extraction never look inside the thinking.
fn after_thinking(response: &str) -> &str {
    match response.rfind(THINK_CLOSE) {
        Some(i) => &response[i + THINK_CLOSE.len()..],
        None => response,
    }
}

/// `boxed` extraction: the content of the last `\boxed{…}` / `\fbox{…}` (braces
/// balanced, nesting allowed) or of the last `<|begin_of_box|>…<|end_of_box|>`,
/// whichever starts later, trimmed. A run of adjacent LaTeX boxes — separated only
/// by whitespace, punctuation, spacing commands, `and` or a short `\\text{…}` — is
/// one answer list, joined with `, ` (`\\boxed{-2} \\quad\\text{and}\\quad \\boxed{1}`
/// gives `-2, 1`); a box after other words is a correction and wins alone. Looks
/// only after the last `</think>`. Linear time, no recursion.
pub fn extract_boxed(response: &str) -> Result<Cow<'_, str>, FormatError> {
    let text = after_thinking(response);
    let base = offset_in(response, text);
    let latex = LATEX_BOXES
        .iter()
        .filter_map(|c| text.rfind(c).map(|i| (i, *c)))
        .max_by_key(|(i, _)| *i);
    let token = text.rfind(BOX_OPEN);
    match (latex, token) {
        (Some((li, command)), t) if t.is_none_or(|t| li > t) => {
            let start = li + command.len();
            let Some(len) = balanced_len(&text[start..]) else {
                return Err(FormatError::UnclosedLatexBox {
                    command,
                    at: base + li,
                });
            };
            let inner = text[start..start + len].trim();
            if inner.is_empty() {
                return Err(FormatError::EmptyBox { at: base + li });
            }
            let earlier = adjacent_boxes_before(text, li);
            if earlier.is_empty() {
                return Ok(Cow::Borrowed(inner));
            }
            let mut parts: Vec<&str> = earlier.into_iter().rev().collect();
            parts.push(inner);
            Ok(Cow::Owned(parts.join(", ")))
        }
        (_, Some(ti)) => {
            let rest = &text[ti + BOX_OPEN.len()..];
            let Some(e) = rest.find(BOX_CLOSE) else {
                return Err(FormatError::UnbalancedBox { begins: 1, ends: 0 });
            };
            let inner = rest[..e].trim();
            if inner.is_empty() {
                return Err(FormatError::EmptyBox { at: base + ti });
            }
            Ok(Cow::Borrowed(inner))
        }
        _ => Err(FormatError::NoBoxAnywhere),
    }
}

/// Most boxes read together as one answer list.
const MAX_BOX_RUN: usize = 64;

/// Longest `\text{…}` that may stand between two boxes of one answer list, in bytes.
const MAX_TEXT_SEPARATOR: usize = 40;

/// Separators that may stand between the boxes of one answer list
/// (`\boxed{1}, \boxed{2}`, `\boxed{1} \quad\text{and}\quad \boxed{2}`).
const BOX_SEPARATORS: [&str; 16] = [
    "\\quad", "\\qquad", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\\\", "\\]", "\\[", "\\)", "\\(",
    "and", ",", ";", "$",
];

/// The contents of the boxes that stand right before the box starting at `at`,
/// separated only by whitespace, punctuation, spacing commands, `and` or a short
/// `\text{…}`: nearest first. Scans backwards; linear in the text it passes.
fn adjacent_boxes_before(text: &str, at: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut p = at;
    while out.len() + 1 < MAX_BOX_RUN {
        // Skip separators.
        loop {
            let before = p;
            while p > 0 && (bytes[p - 1].is_ascii_whitespace() || bytes[p - 1] == b'.') {
                p -= 1;
            }
            for sep in BOX_SEPARATORS {
                if text[..p].ends_with(sep) {
                    let word = sep.as_bytes()[0].is_ascii_alphabetic();
                    let cut = p - sep.len();
                    if !word || cut == 0 || !bytes[cut - 1].is_ascii_alphabetic() {
                        p = cut;
                        break;
                    }
                }
            }
            p = strip_equation_label(text, p);
            if p > 0 && bytes[p - 1] == b'}' {
                if let Some(open) = matching_open(bytes, p - 1) {
                    let cmd = &text[..open];
                    if (cmd.ends_with("\\text") || cmd.ends_with("\\mbox"))
                        && p - 1 - open <= MAX_TEXT_SEPARATOR
                    {
                        p = open - 5;
                    }
                }
            }
            if p == before {
                break;
            }
        }
        // A box must end here.
        if p == 0 || bytes[p - 1] != b'}' {
            break;
        }
        let Some(open) = matching_open(bytes, p - 1) else {
            break;
        };
        let Some(cmd) = ["\\boxed", "\\fbox"]
            .into_iter()
            .find(|c| text[..open].ends_with(c))
        else {
            break;
        };
        let inner = text[open + 1..p - 1].trim();
        if inner.is_empty() {
            break;
        }
        out.push(inner);
        p = open - cmd.len();
    }
    out
}

/// `p` moved back over an equation label ending there (`x =`, `y_2 =`, `x_{12}=`),
/// or `p` unchanged.
fn strip_equation_label(text: &str, p: usize) -> usize {
    let bytes = text.as_bytes();
    let mut q = p;
    while q > 0 && bytes[q - 1] == b' ' {
        q -= 1;
    }
    if q == 0 || bytes[q - 1] != b'=' {
        return p;
    }
    q -= 1;
    while q > 0 && bytes[q - 1] == b' ' {
        q -= 1;
    }
    // Optional subscript: `_d`, `_{…}` (short).
    if q > 0 && bytes[q - 1] == b'}' {
        let Some(open) = matching_open(bytes, q - 1) else {
            return p;
        };
        if open == 0 || bytes[open - 1] != b'_' || q - open > 8 {
            return p;
        }
        q = open - 1;
    } else if q >= 2 && bytes[q - 1].is_ascii_alphanumeric() && bytes[q - 2] == b'_' {
        q -= 2;
    }
    // The variable: one letter, not part of a longer word.
    if q == 0 || !bytes[q - 1].is_ascii_alphabetic() {
        return p;
    }
    q -= 1;
    if q > 0 && (bytes[q - 1].is_ascii_alphabetic() || bytes[q - 1] == b'\\') {
        return p;
    }
    q
}

/// The `{` matching the `}` at `close`, scanning backwards; braces preceded by a
/// backslash are escaped.
fn matching_open(bytes: &[u8], close: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = close;
    while i > 0 {
        i -= 1;
        let escaped = i > 0 && bytes[i - 1] == b'\\';
        match bytes[i] {
            b'}' if !escaped => depth += 1,
            b'{' if !escaped => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Length of the text before the `}` that closes an already opened `{`, or `None`
/// when it is never closed. `\{` and `\}` are escaped braces and do not count.
fn balanced_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // skip the escaped character
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Phrases that introduce a final answer, lowercase, most specific first.
const ANSWER_PHRASES: [&str; 6] = [
    "final answer is",
    "final answer:",
    "the answer is",
    "answer is",
    "answer:",
    "answer =",
];

/// Longest answer taken after an answer phrase, in bytes.
const MAX_PHRASE_ANSWER: usize = 1000;

/// `lenient` extraction, for scoring models that do not follow the GLM format.
/// Looks only after the last `</think>`, in this order:
///
/// 1. a box as in [`extract_boxed`] — unless an answer phrase comes after it;
/// 2. after the last answer phrase ("final answer is", "the answer is", "answer:",
///    case-insensitive), up to the end of its line and sentence: the whole text if it
///    reads as a bare answer (no prose words), else its last number or `$…$` segment;
/// 3. the whole response, if it reads as a bare answer (`.4`, `\frac{10}{9}`, `1 000`);
/// 4. whichever ends later: the last `$…$` / `\(…\)` segment or the last
///    stand-alone number (not part of a word like `K2A`).
///
/// Linear time, no recursion.
pub fn extract_lenient(response: &str) -> Result<Cow<'_, str>, FormatError> {
    let text = after_thinking(response);
    let phrase = last_answer_phrase(text);
    match extract_boxed(response) {
        Ok(b) => {
            // The last box starts at or before the last `\boxed{` / box token.
            let box_at = ["\\boxed{", "\\fbox{", BOX_OPEN]
                .iter()
                .filter_map(|c| text.rfind(c))
                .max()
                .unwrap_or(0);
            if phrase.is_none_or(|(start, _)| start < box_at) {
                return Ok(b);
            }
        }
        Err(FormatError::NoBoxAnywhere) => {}
        Err(e) => return Err(e),
    }
    if let Some((_, end)) = phrase {
        if let Some(a) = answer_after_phrase(&text[end..]) {
            return Ok(Cow::Borrowed(a));
        }
    }
    let whole = trim_answer(text);
    if !whole.is_empty() && whole.len() <= MAX_BARE_ANSWER && is_bare_answer(whole) {
        return Ok(Cow::Borrowed(whole));
    }
    last_math_or_number(text)
        .map(Cow::Borrowed)
        .ok_or(FormatError::NoAnswerFound)
}

/// Longest whole response taken as a bare answer, in bytes.
const MAX_BARE_ANSWER: usize = 200;

/// `(start, end)` of the last answer phrase in `text`.
fn last_answer_phrase(text: &str) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase(); // same byte offsets as `text`
    ANSWER_PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, i + p.len())))
        .max_by_key(|&(start, end)| (start, end))
}

/// The answer in the text after an answer phrase: its line, up to the end of the
/// first sentence; whole when bare, else its last number or math segment.
fn answer_after_phrase(rest: &str) -> Option<&str> {
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let mut cut = line_end.min(MAX_PHRASE_ANSWER);
    while !rest.is_char_boundary(cut) {
        cut -= 1;
    }
    let line = &rest[..cut];
    let sentence = match sentence_end(line) {
        Some(e) => &line[..e],
        None => line,
    };
    let answer = trim_answer(sentence);
    if answer.is_empty() {
        return None;
    }
    if is_bare_answer(answer) {
        return Some(answer);
    }
    Some(last_math_or_number(answer).unwrap_or(answer))
}

/// Byte offset of the first sentence end in `s`: a `.`, `!` or `?` followed by
/// whitespace, outside `$…$` math.
fn sentence_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_math = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'$' => in_math = !in_math,
            b'.' | b'!' | b'?'
                if !in_math && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace) =>
            {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

/// Whether `s` reads as a bare answer rather than prose: outside LaTeX command names,
/// no run of four or more ASCII letters and at most one run of two or more (a unit
/// or a word answer: `5 cm`, `yes`, but not `it's not 10`).
fn is_bare_answer(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() {
            let command = i > 0 && bytes[i - 1] == b'\\';
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            if !command && i - start >= 4 {
                return false;
            }
            if !command && i - start >= 2 {
                words += 1;
                if words > 1 {
                    return false;
                }
            }
        } else {
            i += 1;
        }
    }
    true
}

/// Whichever ends later in `text`: the last math segment or the last stand-alone
/// number.
fn last_math_or_number(text: &str) -> Option<&str> {
    let end = |x: &str| offset_in(text, x) + x.len();
    match (last_math_segment(text), last_number(text)) {
        (Some(m), Some(n)) => Some(if end(n) > end(m) { n } else { m }),
        (m, n) => m.or(n),
    }
}

/// Trims whitespace, markdown emphasis, a trailing period and surrounding
/// punctuation that is not part of an answer.
fn trim_answer(s: &str) -> &str {
    let mut s = s.trim();
    loop {
        let before = s.len();
        s = s
            .trim_start_matches(['*', '_', ':', '='])
            .trim_end_matches(['*', '_'])
            .trim();
        if let Some(t) = s.strip_suffix('.') {
            s = t.trim_end();
        }
        if s.len() == before {
            return s;
        }
    }
}

/// The last non-empty `$…$`, `$$…$$` or `\(…\)` segment, with its delimiters.
fn last_math_segment(text: &str) -> Option<&str> {
    let paren = text.rfind("\\)").and_then(|close| {
        text[..close]
            .rfind("\\(")
            .map(|open| (close, &text[open..close + 2]))
    });
    let dollar = {
        let mut spans = Vec::new();
        let bytes = text.as_bytes();
        let mut open: Option<usize> = None;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' {
                i += 2;
                continue;
            }
            if bytes[i] == b'$' {
                let w = if bytes.get(i + 1) == Some(&b'$') {
                    2
                } else {
                    1
                };
                match open {
                    None => open = Some(i),
                    Some(o) => {
                        spans.push((o, i + w));
                        open = None;
                    }
                }
                i += w;
                continue;
            }
            i += 1;
        }
        spans
            .into_iter()
            .rev()
            .map(|(o, e)| (e, &text[o..e]))
            .find(|(_, seg)| !seg.trim_matches('$').trim().is_empty())
    };
    [paren, dollar]
        .into_iter()
        .flatten()
        .max_by_key(|(end, _)| *end)
        .map(|(_, seg)| seg)
}

/// The last stand-alone number in `text` (digits not right after a letter or `_`,
/// so not the `2` of `K2A` or `x_2`): optional sign, digits, optional decimal part or
/// `/` denominator, optional `%`.
fn last_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut search = bytes.len();
    loop {
        let end_digit = bytes[..search].iter().rposition(u8::is_ascii_digit)?;
        let mut start = end_digit;
        while start > 0 && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
        // A digit run right after a letter is part of a name (`K2A`, `x_2`); one
        // followed by a letter is a number with a unit (`5cm`).
        let glued =
            start > 0 && (bytes[start - 1].is_ascii_alphabetic() || bytes[start - 1] == b'_');
        if !glued {
            return Some(number_around(text, end_digit));
        }
        search = start;
    }
}

/// The number whose last digit is at `end_digit`: sign, digits, `.`, `/`, `,`, `%`.
fn number_around(text: &str, end_digit: usize) -> &str {
    let bytes = text.as_bytes();
    let mut end = end_digit + 1;
    let mut start = end_digit;
    while start > 0 && matches!(bytes[start - 1], b'0'..=b'9' | b'.' | b'/' | b',') {
        start -= 1;
    }
    while start < end && matches!(bytes[start], b'.' | b'/' | b',') {
        start += 1;
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    if bytes.get(end) == Some(&b'%') {
        end += 1;
    }
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ex(input: &str, mode: ExtractMode) -> Result<String, FormatError> {
        extract(input, mode).map(|a| a.into_owned())
    }

    fn owned(want: &Result<&str, FormatError>) -> Result<String, FormatError> {
        want.clone().map(str::to_string)
    }

    fn ok(answer: &str) -> String {
        format!("<think>reasoning</think><answer>{answer}</answer>")
    }

    #[test]
    fn valid_forms() {
        let cases: &[(&str, &str)] = &[
            (
                "<think>x</think><answer><|begin_of_box|>42<|end_of_box|></answer>",
                "42",
            ),
            (
                "  \n\t<think>\nlet me think\n</think>\n\n<answer>\nThe answer is <|begin_of_box|> 42 <|end_of_box|>.\n</answer>\n  ",
                "42",
            ),
            (
                "<think></think><answer><|begin_of_box|>\\frac{1}{2}<|end_of_box|></answer>",
                "\\frac{1}{2}",
            ),
            (
                "<think>思考：2+2=4 ✓ 🎉</think> <answer>答案是 <|begin_of_box|>四 (4)<|end_of_box|> 好的</answer>",
                "四 (4)",
            ),
            (
                "<think>a < b and c > d, <thin k></think><answer>so <|begin_of_box|>a<b<|end_of_box|> done</answer>",
                "a<b",
            ),
            (
                "<think>t</think>\u{3000}<answer><|begin_of_box|>x = 3, y = 4<|end_of_box|></answer>\u{3000}",
                "x = 3, y = 4",
            ),
            (
                "<think>t</think><answer><|begin_of_box|>$\\text{box}$ with </answer\u{200b}><|end_of_box|></answer>",
                "$\\text{box}$ with </answer\u{200b}>",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(extract_glm(input), Ok(*want), "input: {input:?}");
        }
    }

    #[test]
    fn failures() {
        use FormatError::*;
        let cases: Vec<(String, FormatError)> = vec![
            ("".into(), MissingThinkOpen),
            ("   ".into(), MissingThinkOpen),
            (
                "x<think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MissingThinkOpen,
            ),
            (
                "<Think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MissingThinkOpen,
            ),
            (
                "<answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MissingThinkOpen,
            ),
            ("<think>t<think/>".into(), MissingThinkClose { think_at: 0 }),
            ("  <think>never closed".into(), MissingThinkClose { think_at: 2 }),
            (
                "<think>a<think>b</think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MarkerInThinking {
                    marker: THINK_OPEN,
                    at: 8,
                },
            ),
            (
                "<think>a<answer>b</think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MarkerInThinking {
                    marker: ANSWER_OPEN,
                    at: 8,
                },
            ),
            (
                "<think>ab</answer></think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MarkerInThinking {
                    marker: ANSWER_CLOSE,
                    at: 9,
                },
            ),
            (
                "<think><|begin_of_box|>2<|end_of_box|></think><answer><|begin_of_box|>1<|end_of_box|></answer>"
                    .into(),
                MarkerInThinking {
                    marker: BOX_OPEN,
                    at: 7,
                },
            ),
            (
                "<think>x<|end_of_box|></think><answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MarkerInThinking {
                    marker: BOX_CLOSE,
                    at: 8,
                },
            ),
            (
                // A marker in unterminated thinking is reported as such.
                "<think>x<answer>1".into(),
                MarkerInThinking {
                    marker: ANSWER_OPEN,
                    at: 8,
                },
            ),
            (
                "<think>t</think>so <answer><|begin_of_box|>1<|end_of_box|></answer>".into(),
                MissingAnswerOpen { at: 16 },
            ),
            ("<think>t</think>".into(), MissingAnswerOpen { at: 16 }),
            (
                "<think>t</think> <|begin_of_box|>1<|end_of_box|>".into(),
                MissingAnswerOpen { at: 17 },
            ),
            (
                "<think>t</think><answer><|begin_of_box|>1<|end_of_box|>".into(),
                MissingAnswerClose { answer_at: 16 },
            ),
            (
                "<think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer >".into(),
                MissingAnswerClose { answer_at: 16 },
            ),
            (
                "<think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer>x".into(),
                TrailingText { at: 64, len: 1 },
            ),
            (
                "<think>t</think><answer><|begin_of_box|>1<|end_of_box|></answer> </answer> ".into(),
                TrailingText { at: 65, len: 9 },
            ),
            (
                ok("<think>more</think><|begin_of_box|>1<|end_of_box|>"),
                NestedTag {
                    tag: THINK_OPEN,
                    at: 32,
                },
            ),
            (
                ok("x</think><|begin_of_box|>1<|end_of_box|>"),
                NestedTag {
                    tag: THINK_CLOSE,
                    at: 33,
                },
            ),
            (
                ok("<answer><|begin_of_box|>1<|end_of_box|>"),
                NestedTag {
                    tag: ANSWER_OPEN,
                    at: 32,
                },
            ),
            (
                ok("\\boxed{1}"),
                LatexBox {
                    command: "\\boxed{",
                    at: 32,
                },
            ),
            (
                ok("<|begin_of_box|>\\boxed{1}<|end_of_box|>"),
                LatexBox {
                    command: "\\boxed{",
                    at: 48,
                },
            ),
            (
                ok("so \\fbox{1} <|begin_of_box|>1<|end_of_box|>"),
                LatexBox {
                    command: "\\fbox{",
                    at: 35,
                },
            ),
            (ok("just 42"), NoBox),
            (ok("<|begin_of_box |>42<|end_of_box|>"), UnbalancedBox { begins: 0, ends: 1 }),
            (ok("<|begin_of_box|>42"), UnbalancedBox { begins: 1, ends: 0 }),
            (
                ok("<|begin_of_box|><|begin_of_box|>42<|end_of_box|>"),
                UnbalancedBox { begins: 2, ends: 1 },
            ),
            (
                ok("<|begin_of_box|>1<|end_of_box|> or <|begin_of_box|>2<|end_of_box|>"),
                MultipleBoxes { count: 2 },
            ),
            (
                ok("<|end_of_box|>42<|begin_of_box|>"),
                BoxEndBeforeBegin {
                    begin_at: 48,
                    end_at: 32,
                },
            ),
            (ok("<|begin_of_box|><|end_of_box|>"), EmptyBox { at: 32 }),
            (ok("<|begin_of_box|> \n\t <|end_of_box|>"), EmptyBox { at: 32 }),
        ];
        for (input, want) in cases {
            let got = extract_glm(&input);
            assert_eq!(got, Err(want.clone()), "input: {input:?}");
            // Messages are non-empty and say something.
            assert!(want.to_string().len() > 10);
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let e = FormatError::UnbalancedBox { begins: 2, ends: 1 };
        assert!(e.to_string().contains("2") && e.to_string().contains("unbalanced"));
        let e = FormatError::MarkerInThinking {
            marker: ANSWER_OPEN,
            at: 5,
        };
        assert!(e.to_string().contains("<answer>") && e.to_string().contains("byte 5"));
    }

    #[test]
    fn huge_inputs_return() {
        let big = "a".repeat(1 << 20);
        let resp = format!(
            "<think>{big}</think><answer>{big}<|begin_of_box|>{big}<|end_of_box|></answer>"
        );
        assert_eq!(extract_glm(&resp).map(str::len), Ok(1 << 20));
        let braces = "{".repeat(100_000);
        assert!(extract_glm(&braces).is_err());
        let resp = ok(&format!("<|begin_of_box|>{braces}<|end_of_box|>"));
        assert_eq!(extract_glm(&resp).map(str::len), Ok(100_000));
        let many = "<think>".repeat(200_000);
        assert!(extract_glm(&many).is_err());
        let many_boxes = ok(&"<|begin_of_box|>".repeat(100_000));
        assert_eq!(
            extract_glm(&many_boxes),
            Err(FormatError::UnbalancedBox {
                begins: 100_000,
                ends: 0
            })
        );
    }

    #[test]
    fn glm45v_accepts_the_form_without_answer_tags() {
        let m = ExtractMode::Glm45v;
        let cases: &[(&str, Result<&str, FormatError>)] = &[
            ("<think>t</think><|begin_of_box|>7<|end_of_box|>", Ok("7")),
            (
                "<think>t</think>\nSo it is <|begin_of_box|> 7 <|end_of_box|>.",
                Ok("7"),
            ),
            (
                "<think>t</think><answer><|begin_of_box|>7<|end_of_box|></answer>",
                Ok("7"),
            ),
            ("<think>t</think>so 7", Err(FormatError::NoBox)),
            (
                "<think>t</think><|begin_of_box|>7<|end_of_box|></answer>",
                Err(FormatError::NestedTag {
                    tag: ANSWER_CLOSE,
                    at: 47,
                }),
            ),
            (
                "<think>t</think><|begin_of_box|>7<|end_of_box|><|begin_of_box|>8<|end_of_box|>",
                Err(FormatError::MultipleBoxes { count: 2 }),
            ),
            (
                "t</think><|begin_of_box|>7<|end_of_box|>",
                Err(FormatError::MissingThinkOpen),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input, m), owned(want), "input: {input:?}");
        }
        // The strict mode still refuses the bare form.
        assert_eq!(
            extract(
                "<think>t</think><|begin_of_box|>7<|end_of_box|>",
                ExtractMode::Glm
            ),
            Err(FormatError::MissingAnswerOpen { at: 16 })
        );
    }

    #[test]
    fn boxed_takes_the_last_box_with_nested_braces() {
        let cases: &[(&str, Result<&str, FormatError>)] = &[
            ("so \\boxed{42}.", Ok("42")),
            ("\\boxed{1} then \\boxed{\\frac{1}{2}}", Ok("\\frac{1}{2}")),
            ("\\fbox{ x^{2} } last", Ok("x^{2}")),
            ("\\boxed{\\{1,2\\}}", Ok("\\{1,2\\}")),
            ("\\boxed{1} and <|begin_of_box|>2<|end_of_box|>", Ok("2")),
            ("\\boxed{1} and \\boxed{2} and \\boxed{3}", Ok("1, 2, 3")),
            ("\\boxed{(1, 2)}, \\boxed{(2, 1)}", Ok("(1, 2), (2, 1)")),
            (
                "\\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]",
                Ok("-2, 1"),
            ),
            ("$\\boxed{a}$ and $\\boxed{b}$", Ok("a, b")),
            ("\\boxed{3}. Wait, no: \\boxed{5}", Ok("5")),
            ("\\boxed{3} or maybe \\boxed{5}", Ok("5")),
            ("\\boxed{x^{2}}\\boxed{y}", Ok("x^{2}, y")),
            ("$x_1 = \\boxed{2}$ and $x_{2} = \\boxed{3}$", Ok("2, 3")),
            ("x = \\boxed{2}, y=\\boxed{3}", Ok("2, 3")),
            ("\\boxed{2} so the mass = \\boxed{3}", Ok("3")),
            ("\\text{\\boxed{1}} \\boxed{2}", Ok("2")),
            ("<|begin_of_box|>2<|end_of_box|> and \\boxed{3}", Ok("3")),
            ("<think>\\boxed{9}</think>\\boxed{4}", Ok("4")),
            (
                "<think>\\boxed{9}</think> no box",
                Err(FormatError::NoBoxAnywhere),
            ),
            ("plain 42", Err(FormatError::NoBoxAnywhere)),
            ("\\boxed{}", Err(FormatError::EmptyBox { at: 0 })),
            (
                "\\boxed{1} \\boxed{2",
                Err(FormatError::UnclosedLatexBox {
                    command: "\\boxed{",
                    at: 10,
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                ex(input, ExtractMode::Boxed),
                owned(want),
                "input: {input:?}"
            );
        }
    }

    #[test]
    fn lenient_falls_back_from_box_to_phrase_to_math_to_number() {
        let cases: &[(&str, Result<&str, FormatError>)] = &[
            ("blah \\boxed{5} The answer is 6", Ok("6")),
            ("The answer is 6, so \\boxed{5}", Ok("5")),
            (
                "Final Answer: The volume of $ABC$ is 120. I hope it is correct.",
                Ok("120"),
            ),
            (
                "Final Answer: The final answer is $10,455$. I hope",
                Ok("$10,455$"),
            ),
            ("Answer: Paris", Ok("Paris")),
            (".4", Ok(".4")),
            ("1 000", Ok("1 000")),
            ("-\\frac{10}{9}", Ok("-\\frac{10}{9}")),
            ("AZYUK2A", Err(FormatError::NoAnswerFound)),
            ("not it's not 10 it's 1,000.99m²", Ok("1,000.99")),
            ("5 cm", Ok("5 cm")),
            (
                "so $d = \\frac{90}{n}$ and there are 12 sequences",
                Ok("12"),
            ),
            ("increases by 100%.", Ok("100%")),
            (
                "So the final answer is $\\frac{1}{2}$.",
                Ok("$\\frac{1}{2}$"),
            ),
            ("Answer: **B**", Ok("B")),
            ("The answer is 12.\nThanks", Ok("12")),
            ("we get $x = 3$ and then $y=4$ done", Ok("$y=4$")),
            ("therefore \\(x^2\\) holds", Ok("\\(x^2\\)")),
            ("it costs 1,234.5 dollars, or 7%", Ok("7%")),
            ("roughly -3.25", Ok("-3.25")),
            ("nothing here", Err(FormatError::NoAnswerFound)),
            ("", Err(FormatError::NoAnswerFound)),
            (
                "<think>the answer is 3</think>no idea",
                Err(FormatError::NoAnswerFound),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                ex(input, ExtractMode::Lenient),
                owned(want),
                "input: {input:?}"
            );
        }
    }

    #[test]
    fn modes_parse_by_name() {
        for m in ExtractMode::ALL {
            assert_eq!(m.name().parse::<ExtractMode>(), Ok(m));
        }
        let err = "strict".parse::<ExtractMode>().expect_err("unknown");
        assert!(err.contains("strict") && err.contains("lenient"));
    }

    #[test]
    fn every_mode_survives_huge_and_nested_input() {
        let nested = format!("\\boxed{{{}", "{".repeat(100_000));
        let big = format!(
            "{} the answer is {}",
            "x".repeat(1 << 20),
            "9".repeat(1 << 20)
        );
        for m in ExtractMode::ALL {
            let _ = extract(&nested, m);
            let _ = extract(&big, m);
            let _ = extract(&"$".repeat(100_000), m);
            let _ = extract(&"\\".repeat(100_001), m);
        }
        assert!(matches!(
            extract(&nested, ExtractMode::Boxed),
            Err(FormatError::UnclosedLatexBox { .. })
        ));
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(THINK_OPEN.to_string()),
            Just(THINK_CLOSE.to_string()),
            Just(ANSWER_OPEN.to_string()),
            Just(ANSWER_CLOSE.to_string()),
            Just(BOX_OPEN.to_string()),
            Just(BOX_CLOSE.to_string()),
            Just("\\boxed{".to_string()),
            Just("}".to_string()),
            Just("$".to_string()),
            Just("answer:".to_string()),
            Just(" ".to_string()),
            Just("<".to_string()),
            Just("|".to_string()),
            any::<String>(),
            "[0-9a-z ]{0,4}",
        ]
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary(s in any::<String>()) {
            for m in ExtractMode::ALL {
                if let Ok(x) = extract(&s, m) {
                    prop_assert!(!x.is_empty());
                }
            }
        }

        #[test]
        fn never_panics_on_marker_soup(parts in prop::collection::vec(token(), 0..24)) {
            let s: String = parts.concat();
            for m in ExtractMode::ALL {
                let _ = extract(&s, m);
            }
            if let Ok(x) = extract_glm(&s) {
                prop_assert!(!x.is_empty());
                prop_assert!(x.trim() == x);
                for m in MARKERS {
                    prop_assert!(!x.contains(m));
                }
            }
        }

        #[test]
        fn well_formed_round_trips(
            think in "[^<]{0,40}",
            pre in "[^<\\\\]{0,20}",
            boxed in "[a-z0-9 +\\-*/=.,]{0,20}[a-z0-9]",
            post in "[^<\\\\]{0,20}",
        ) {
            let s = format!("<think>{think}</think>\n<answer>{pre}<|begin_of_box|>{boxed}<|end_of_box|>{post}</answer>");
            prop_assert_eq!(extract_glm(&s), Ok(boxed.trim()));
        }
    }
}
