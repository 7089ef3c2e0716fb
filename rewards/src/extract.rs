//! The strict GLM-4.1V format gate.
//!
//! A well-formed response is, and is nothing but:
//!
//! ```text
//! <think>THINKING</think> <answer>… <|begin_of_box|>X<|end_of_box|> …</answer>
//! ```
//!
//! with optional whitespace before `<think>`, between `</think>` and `<answer>`, and
//! after `</answer>`. [`extract_glm`] returns the trimmed `X` or a [`FormatError`]
//! naming the first thing that is wrong. The gate runs in time linear in the length
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
pub fn extract(response: &str, mode: ExtractMode) -> Result<&str, FormatError> {
    match mode {
        ExtractMode::Glm => extract_glm(response),
        ExtractMode::Glm45v => extract_glm(response),
        ExtractMode::Boxed => extract_glm(response),
        ExtractMode::Lenient => extract_glm(response),
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
    let answer_body = answer_start
        .strip_prefix(ANSWER_OPEN)
        .ok_or(FormatError::MissingAnswerOpen { at: answer_at })?;
    let body_at = answer_at + ANSWER_OPEN.len();

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

    if let Some((i, tag)) = first_of(answer, &[THINK_OPEN, THINK_CLOSE, ANSWER_OPEN]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(THINK_OPEN.to_string()),
            Just(THINK_CLOSE.to_string()),
            Just(ANSWER_OPEN.to_string()),
            Just(ANSWER_CLOSE.to_string()),
            Just(BOX_OPEN.to_string()),
            Just(BOX_CLOSE.to_string()),
            Just("\\boxed{".to_string()),
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
            let _ = extract_glm(&s);
        }

        #[test]
        fn never_panics_on_marker_soup(parts in prop::collection::vec(token(), 0..24)) {
            let s: String = parts.concat();
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
