//! LaTeX clean-up before parsing: delimiters, spacing, text wrappers, unicode, digit
//! grouping. One linear pass each; no recursion.

/// Repeatedly trims and strips a trailing period and math delimiters.
pub(crate) fn strip_wrappers(mut s: &str) -> &str {
    const PAIRS: [(&str, &str); 4] = [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")];
    loop {
        let before = s.len();
        s = s.trim();
        if let Some(t) = s.strip_suffix('.').filter(|t| !t.ends_with('\\')) {
            s = t;
        } else if let Some(t) = s.strip_suffix("\\\\") {
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

/// The contents of every `\boxed{…}` / `\fbox{…}` in `s` (balanced braces), or `None`
/// when there is none.
pub(crate) fn boxed_contents(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let at = match (rest.find("\\boxed"), rest.find("\\fbox")) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        let after = &rest[at + 1..];
        let name_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let tail = after[name_len..].trim_start();
        let Some(body) = tail.strip_prefix('{') else {
            rest = &after[name_len..];
            continue;
        };
        let mut depth = 1usize;
        let mut end = None;
        for (i, b) in body.bytes().enumerate() {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(e) => {
                out.push(&body[..e]);
                rest = &body[e + 1..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One linear pass over LaTeX-ish text; see [`super::normalize_answer`].
pub(crate) fn rewrite(s: &str) -> String {
    fn push_space(out: &mut String) {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    fn push_cmd(out: &mut String, cmd: &str) {
        out.push_str(cmd);
        out.push(' ');
    }
    let mut out = String::with_capacity(s.len() + 8);
    // For each `{` still open: whether its `}` is to be dropped (unwrapped command).
    let mut drop_close: Vec<bool> = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        rest = after;
        match c {
            '\\' => {
                // `\\le` is an escaping artefact for `\le`; `\\` before anything else is a
                // row separator.
                let after = match after.strip_prefix('\\') {
                    Some(t) if t.starts_with(|ch: char| ch.is_ascii_alphabetic()) => t,
                    _ => after,
                };
                let name_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
                if name_len > 0 {
                    let (name, tail) = after.split_at(name_len);
                    rest = tail;
                    match name {
                        "left" | "right" | "bigl" | "bigr" | "Bigl" | "Bigr" | "big" | "Big"
                        | "biggl" | "biggr" | "middle" => {
                            // `\left.` / `\right.` are invisible delimiters.
                            rest = tail.strip_prefix('.').unwrap_or(tail);
                        }
                        "text" | "textrm" | "mathrm" | "mathbf" | "textbf" | "mbox" | "boxed"
                        | "fbox" | "textnormal" | "operatorname" | "mathit" | "textit" | "emph"
                        | "mathsf" | "textsf" | "hbox" | "textup" | "mathnormal" | "bm"
                        | "boldsymbol" | "displaystyle" | "textstyle" | "mathbb" | "mathcal" => {
                            if name == "displaystyle" || name == "textstyle" {
                                continue;
                            }
                            let t = tail.trim_start();
                            // `\mathbb{R}`: the real line.
                            if name == "mathbb" {
                                if let Some(t) =
                                    t.strip_prefix("{R}").or_else(|| t.strip_prefix('R'))
                                {
                                    out.push_str("(-\\infty,\\infty)");
                                    rest = t;
                                    continue;
                                }
                            }
                            if let Some(t) = t.strip_prefix('{') {
                                drop_close.push(true);
                                if matches!(name, "text" | "textnormal" | "mbox" | "textrm") {
                                    push_space(&mut out);
                                }
                                rest = t;
                            } else if name == "operatorname" || name == "mathrm" {
                                // `\mathrm e`: the argument is the next char.
                            } else {
                                push_cmd(&mut out, &format!("\\{name}"));
                            }
                        }
                        "dfrac" | "tfrac" | "cfrac" => out.push_str("\\frac"),
                        "quad" | "qquad" | "hfill" | "space" => push_space(&mut out),
                        "circ" | "degree" => {
                            if out.ends_with('^') {
                                out.pop();
                            }
                            out.push('°');
                        }
                        "dollar" => {}
                        "lt" => out.push('<'),
                        "gt" => out.push('>'),
                        "leq" | "leqslant" | "le" => push_cmd(&mut out, "\\le"),
                        "geq" | "geqslant" | "ge" => push_cmd(&mut out, "\\ge"),
                        "neq" | "ne" => push_cmd(&mut out, "\\ne"),
                        _ => {
                            out.push('\\');
                            out.push_str(name);
                            if tail.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
                                out.push(' ');
                            }
                        }
                    }
                } else if let Some(nc) = after.chars().next() {
                    rest = &after[nc.len_utf8()..];
                    match nc {
                        ',' | ';' | ':' | ' ' | '>' => push_space(&mut out),
                        '!' => rest = rest.trim_start(),
                        '%' => out.push('%'),
                        '$' => {}
                        _ => {
                            out.push('\\');
                            out.push(nc);
                        }
                    }
                } else {
                    out.push('\\');
                }
            }
            '{' => {
                // `{,}` (also `{, }`): a thousands separator.
                let comma = after
                    .trim_start()
                    .strip_prefix(',')
                    .and_then(|t| t.trim_start().strip_prefix('}'));
                if let Some(t) = comma {
                    if out.ends_with(' ') {
                        out.pop();
                    }
                    out.push(',');
                    rest = t;
                } else if let Some(t) = after.strip_prefix("\\circ}").filter(|_| out.ends_with('^'))
                {
                    out.pop();
                    out.push('°');
                    rest = t;
                } else {
                    drop_close.push(false);
                    out.push('{');
                }
            }
            '}' => {
                if drop_close.pop() != Some(true) {
                    out.push('}');
                }
            }
            '$' => push_space(&mut out),
            '\u{2212}' | '\u{2013}' => out.push('-'),
            '×' | '⋅' => push_cmd(&mut out, "\\times"),
            '·' => push_cmd(&mut out, "\\cdot"),
            '÷' => push_cmd(&mut out, "\\div"),
            'π' => push_cmd(&mut out, "\\pi"),
            '√' => push_cmd(&mut out, "\\sqrt"),
            '∞' => push_cmd(&mut out, "\\infty"),
            '≤' | '⩽' => push_cmd(&mut out, "\\le"),
            '≥' | '⩾' => push_cmd(&mut out, "\\ge"),
            '≠' => push_cmd(&mut out, "\\ne"),
            '≈' => push_cmd(&mut out, "\\approx"),
            '±' => push_cmd(&mut out, "\\pm"),
            '∓' => push_cmd(&mut out, "\\mp"),
            '∪' => push_cmd(&mut out, "\\cup"),
            '∩' => push_cmd(&mut out, "\\cap"),
            '∈' => push_cmd(&mut out, "\\in"),
            'Ω' | '\u{2126}' => push_cmd(&mut out, "\\Omega"),
            'ℝ' => out.push_str("(-\\infty,\\infty)"),
            'μ' | 'µ' => push_cmd(&mut out, "\\mu"),
            '²' => out.push_str("^2"),
            '³' => out.push_str("^3"),
            '℃' => out.push_str("°C"),
            '℉' => out.push_str("°F"),
            '€' | '£' | '¥' => {}
            c if c.is_whitespace() || c == '~' => push_space(&mut out),
            c => out.push(c),
        }
    }
    out
}

/// Removes thousands separators (`,` or a space) from digit runs where the first
/// group has 1–3 digits, every later group exactly 3, and one separator kind is used;
/// drops every other space except one between two digits.
pub(crate) fn join_digit_groups(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let n = c.len();
    let digit = |i: usize| i < n && c[i].is_ascii_digit();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < n {
        if digit(i) {
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
            let after_point = start > 0
                && (c[start - 1] == '.'
                    || c[start - 1].is_ascii_alphabetic()
                    || c[start - 1] == '_');
            let leading_zero = c[start] == '0' && groups[0] == 1 && sep == Some(',');
            // `(12,102)` is a pair, not the number 12102 in parentheses.
            let opens = start > 0 && matches!(c[start - 1], '(' | '[')
                || start > 1 && c[start - 1] == '-' && matches!(c[start - 2], '(' | '[');
            let closes = i < n && matches!(c[i], ')' | ']');
            let bracketed_pair = sep == Some(',') && opens && closes;
            let valid = sep.is_some()
                && !bracketed_pair
                && !mixed
                && !after_point
                && !leading_zero
                && (1..=3).contains(&groups[0])
                && groups[1..].iter().all(|&g| g == 3);
            for &ch in &c[start..i] {
                if !(valid && (ch == ',' || ch == ' ')) {
                    out.push(ch);
                }
            }
        } else {
            if c[i] != ' '
                || (i > 0 && i + 1 < n && c[i - 1].is_ascii_digit() && c[i + 1].is_ascii_digit())
            {
                out.push(c[i]);
            } else if c[i] == ' '
                && !out.ends_with(' ')
                && i + 1 < n
                && i > 0
                && c[i + 1].is_ascii_alphabetic()
                && c[i - 1].is_ascii_alphanumeric()
            {
                // keep word boundaries (`5 cm`, `x y`)
                out.push(' ');
            }
            i += 1;
        }
    }
    out
}

/// The single-comma decimal reading of `s` (`1,22` → `1.22`, `1000,99` →
/// `1000.99`), when `s` is `-?digits,digits` and not a thousands grouping.
pub(crate) fn decimal_comma(s: &str) -> Option<String> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (a, b) = body.split_once(',')?;
    if a.is_empty()
        || b.is_empty()
        || !a.bytes().all(|c| c.is_ascii_digit())
        || !b.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some(s.replacen(',', ".", 1))
}

/// Maximum nesting of `{`, `(`, `[` in `s`.
pub(crate) fn max_depth(s: &str) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    for b in s.bytes() {
        match b {
            b'{' | b'(' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
