//! The `gui` verifier: GUI agent actions (paper Table 1: "action type and keys must
//! match; product of per-key scores").
//!
//! **Actions.** Gold is JSON: an object such as `{"action":"click","point":[x,y]}`,
//! `{"action":"click","box":[x1,y1,x2,y2]}`, `{"action":"type","text":"hello"}`,
//! `{"action":"scroll","direction":"down"}`, `{"action":"drag","start":[..],"end":[..]}`,
//! `{"action":"press","key":"enter"}` (the type may also be under `action_type`), or a
//! list of such objects: acceptable alternatives, scored by the best one. The answer is
//! the same JSON, or a call: `click(x=100, y=200)`, `CLICK(box=[1,2,3,4])`,
//! `type(text="hello")`, `scroll(direction=down)`, `drag(start=(1,2), end=(3,4))`,
//! `press('enter')`; text before the call (`Action: click(…)`) is skipped.
//!
//! **Normalisation.** Action types and keys are compared lowercased. Coordinates
//! `x`,`y` become a point and `x1,y1,x2,y2` a box; a point or box under `point`,
//! `box`, `bbox`, `bbox_2d`, `coordinate(s)`, `position` or `target` is the key
//! `target`; `start_point`/`end_point` are `start`/`end`; `content` is `text`. In the
//! call form, positional arguments are read as: two numbers or one point → `target`,
//! four numbers or one box → `target`, two points → `start`, `end`, one string → `key`
//! for `press`/`key`/`hotkey`, `direction` for `scroll`/`swipe`, else `text`.
//!
//! **Score.** 0 unless the action types are equal and the key sets are equal. Then
//! the product of per-key scores:
//! - point vs gold box: 1 inside (edges included), else 0;
//! - point vs gold point: 1 within [`GuiVerifier::point_full_radius`] (default 14 on
//!   the 0–1000 grid, 1.4% of the screen), falling linearly to 0 at
//!   [`GuiVerifier::point_zero_radius`] (default 100); a predicted box is judged by its
//!   centre against a gold point;
//! - box vs box: IoU;
//! - `text`: LCS ratio `2·LCS / (len a + len b)` over chars (case-sensitive by default,
//!   [`GuiVerifier::text_case_sensitive`]); two empty texts score 1;
//! - `direction`, `key`, `keys`, `button`, `hotkey`, `app`, `app_name`: equal ignoring
//!   case and surrounding space;
//! - anything else: equal (numbers numerically, a number also matches its text).
//!
//! The answer is correct only at score 1. Sub-scores: `action` and one per key.
//! Work is bounded: answers over [`MAX_ANSWER_BYTES`] score 0, texts over
//! [`GuiVerifier::max_text_chars`] chars score 1 only when equal, at most
//! [`MAX_ALTERNATIVES`] gold alternatives are read, and nothing recurses on input.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::grounding::{iou, BBox};
use crate::{excerpt, Judgement, Tolerance, Verifier};

/// Longest answer (in bytes) read as an action; longer answers are wrong.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Most gold alternatives considered.
pub const MAX_ALTERNATIVES: usize = 64;

/// Keys compared as names: case-insensitive exact.
const NAME_KEYS: &[&str] = &[
    "direction",
    "key",
    "keys",
    "button",
    "hotkey",
    "app",
    "app_name",
];

/// Keys whose point or box value is the action's target location.
const TARGET_KEYS: &[&str] = &[
    "point",
    "box",
    "bbox",
    "bbox_2d",
    "coordinate",
    "coordinates",
    "position",
    "target",
];

/// The `gui` verifier (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GuiVerifier {
    /// Points this close to a gold point (grid units) score 1 (default 14).
    pub point_full_radius: f64,
    /// Points this far from a gold point or farther score 0 (default 100).
    pub point_zero_radius: f64,
    /// Compare `text` case-sensitively (default `true`).
    pub text_case_sensitive: bool,
    /// Longest text (chars) scored by LCS; longer texts score 1 only when equal
    /// (default 1024).
    pub max_text_chars: usize,
}

impl Default for GuiVerifier {
    /// Full credit within 14, none beyond 100; case-sensitive text; 1024-char texts.
    fn default() -> Self {
        GuiVerifier {
            point_full_radius: 14.0,
            point_zero_radius: 100.0,
            text_case_sensitive: true,
            max_text_chars: 1024,
        }
    }
}

/// One argument value of an action.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Point(f64, f64),
    Box(BBox),
    Num(f64),
    Text(String),
    /// Any other JSON value, serialised.
    Other(String),
}

/// A parsed action: its lowercase type and canonical keys.
#[derive(Debug, Clone, PartialEq)]
struct Action {
    kind: String,
    args: BTreeMap<String, Arg>,
}

impl Verifier for GuiVerifier {
    fn name(&self) -> &str {
        "gui"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let golds = match parse_gold(gold) {
            Ok(g) => g,
            Err(e) => return Judgement::wrong(format!("gold \"{}\": {e}", excerpt(gold))),
        };
        if answer.len() > MAX_ANSWER_BYTES {
            return Judgement::wrong(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
        }
        let ans = match parse_answer(answer) {
            Ok(a) => a,
            Err(e) => return Judgement::wrong(format!("answer \"{}\": {e}", excerpt(answer))),
        };
        let mut best: Option<Judgement> = None;
        for g in &golds {
            let j = self.score_action(&ans, g);
            if best.as_ref().is_none_or(|b| j.score > b.score) {
                best = Some(j);
            }
        }
        best.unwrap_or_else(|| Judgement::wrong("gold has no actions"))
    }
}

impl GuiVerifier {
    fn score_action(&self, ans: &Action, gold: &Action) -> Judgement {
        if ans.kind != gold.kind {
            return Judgement::wrong(format!(
                "action type \"{}\" != gold \"{}\"",
                excerpt(&ans.kind),
                excerpt(&gold.kind)
            ))
            .with("action", 0.0);
        }
        if ans.args.keys().ne(gold.args.keys()) {
            let missing: Vec<&str> = gold
                .args
                .keys()
                .filter(|k| !ans.args.contains_key(*k))
                .map(String::as_str)
                .collect();
            let extra: Vec<&str> = ans
                .args
                .keys()
                .filter(|k| !gold.args.contains_key(*k))
                .map(String::as_str)
                .collect();
            return Judgement::wrong(format!(
                "keys differ: missing [{}], extra [{}]",
                excerpt(&missing.join(", ")),
                excerpt(&extra.join(", "))
            ))
            .with("action", 1.0);
        }
        let mut score = 1.0;
        let mut subs = Vec::new();
        let mut low = Vec::new();
        for (key, g) in &gold.args {
            let s = match ans.args.get(key) {
                Some(a) => self.score_arg(key, a, g),
                None => 0.0,
            };
            score *= s;
            if s < 1.0 {
                low.push(format!("{key} {s:.3}"));
            }
            subs.push((key.clone(), s));
        }
        let mut j = Judgement::partial(
            score,
            Some(format!("per-key scores below 1: {}", low.join(", "))),
        )
        .with("action", 1.0);
        for (k, s) in subs {
            let name = if matches!(k.as_str(), "format" | "answer" | "action") {
                format!("arg_{k}")
            } else {
                k
            };
            j = j.with(&name, s);
        }
        j
    }

    fn score_arg(&self, key: &str, a: &Arg, g: &Arg) -> f64 {
        match (a, g) {
            (Arg::Point(x, y), Arg::Box(b)) => f64::from(u8::from(b.contains(*x, *y))),
            (Arg::Point(x, y), Arg::Point(gx, gy)) => self.distance_score(*x - gx, *y - gy),
            (Arg::Box(b), Arg::Point(gx, gy)) => {
                let (x, y) = b.center();
                self.distance_score(x - gx, y - gy)
            }
            (Arg::Box(a), Arg::Box(b)) => iou(a, b),
            (Arg::Text(a), Arg::Text(g)) => {
                if NAME_KEYS.contains(&key) {
                    f64::from(u8::from(a.trim().to_lowercase() == g.trim().to_lowercase()))
                } else if key == "text" {
                    self.text_score(a, g)
                } else {
                    f64::from(u8::from(a.trim() == g.trim()))
                }
            }
            (Arg::Num(a), Arg::Num(g)) => f64::from(u8::from(a == g)),
            (Arg::Num(n), Arg::Text(t)) | (Arg::Text(t), Arg::Num(n)) => {
                f64::from(u8::from(t.trim().parse::<f64>().is_ok_and(|v| v == *n)))
            }
            (Arg::Other(a), Arg::Other(g)) => f64::from(u8::from(a == g)),
            _ => 0.0,
        }
    }

    /// 1 within the full radius, linear to 0 at the zero radius.
    fn distance_score(&self, dx: f64, dy: f64) -> f64 {
        let d = dx.hypot(dy);
        if !d.is_finite() {
            return 0.0;
        }
        if d <= self.point_full_radius {
            return 1.0;
        }
        if d >= self.point_zero_radius {
            return 0.0;
        }
        let span = self.point_zero_radius - self.point_full_radius;
        ((self.point_zero_radius - d) / span).clamp(0.0, 1.0)
    }

    /// LCS ratio `2·LCS / (len a + len b)`.
    fn text_score(&self, a: &str, g: &str) -> f64 {
        let fold = |s: &str| -> Vec<char> {
            if self.text_case_sensitive {
                s.chars().collect()
            } else {
                s.chars().flat_map(char::to_lowercase).collect()
            }
        };
        let (a, g) = (fold(a), fold(g));
        if a == g {
            return 1.0;
        }
        if a.len() > self.max_text_chars || g.len() > self.max_text_chars {
            return 0.0;
        }
        2.0 * lcs_len(&a, &g) as f64 / (a.len() + g.len()) as f64
    }
}

/// Length of the longest common subsequence, with memory linear in the shorter input.
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diag = 0;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

/// Gold: one JSON action or a list of alternatives.
fn parse_gold(gold: &str) -> Result<Vec<Action>, String> {
    let v: Value = match serde_json::from_str(gold.trim()) {
        Ok(v) => v,
        Err(_) => return parse_call(gold).map(|a| vec![a]),
    };
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err("empty list of actions".to_string());
            }
            items
                .iter()
                .take(MAX_ALTERNATIVES)
                .map(action_from_json)
                .collect()
        }
        v => action_from_json(&v).map(|a| vec![a]),
    }
}

/// Answer: JSON (possibly in a code fence) or a call.
fn parse_answer(answer: &str) -> Result<Action, String> {
    let mut t = answer.trim();
    if let Some(r) = t.strip_prefix("```") {
        let r = r.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        t = r.strip_suffix("```").unwrap_or(r).trim();
    }
    if t.starts_with('{') || t.starts_with('[') {
        let v: Value = serde_json::from_str(t).map_err(|e| format!("invalid JSON ({e})"))?;
        return match v {
            Value::Array(items) if items.len() == 1 => action_from_json(&items[0]),
            Value::Array(_) => Err("expected one action".to_string()),
            v => action_from_json(&v),
        };
    }
    parse_call(t)
}

fn json_num_list(v: &Value) -> Option<Vec<f64>> {
    let arr = v.as_array()?;
    let mut out = Vec::new();
    for x in arr {
        match x {
            Value::Number(n) => out.push(n.as_f64()?),
            Value::Array(inner) => {
                for y in inner {
                    out.push(y.as_f64()?);
                }
            }
            _ => return None,
        }
        if out.len() > 4 {
            return None;
        }
    }
    Some(out)
}

fn arg_from_json(v: &Value) -> Arg {
    match v {
        Value::Number(n) => n.as_f64().map_or(Arg::Other(n.to_string()), Arg::Num),
        Value::String(s) => Arg::Text(s.clone()),
        Value::Bool(b) => Arg::Text(b.to_string()),
        Value::Array(_) => match json_num_list(v).as_deref() {
            Some(&[x, y]) => Arg::Point(x, y),
            Some(&[x1, y1, x2, y2]) => Arg::Box(BBox { x1, y1, x2, y2 }),
            _ => Arg::Other(v.to_string()),
        },
        other => Arg::Other(other.to_string()),
    }
}

fn action_from_json(v: &Value) -> Result<Action, String> {
    let Value::Object(m) = v else {
        return Err("an action is a JSON object".to_string());
    };
    let kind = ["action", "action_type"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str))
        .ok_or("no `action` type")?;
    let mut args = BTreeMap::new();
    for (k, val) in m {
        let k = k.to_lowercase();
        if k == "action" || k == "action_type" {
            continue;
        }
        args.insert(k, arg_from_json(val));
    }
    Ok(canonical(kind, args))
}

/// Lowercases the type and applies the key aliases of the module docs.
fn canonical(kind: &str, mut args: BTreeMap<String, Arg>) -> Action {
    let num = |args: &BTreeMap<String, Arg>, k: &str| match args.get(k) {
        Some(Arg::Num(v)) => Some(*v),
        Some(Arg::Text(t)) => t.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let (Some(x), Some(y)) = (num(&args, "x"), num(&args, "y")) {
        args.remove("x");
        args.remove("y");
        args.insert("point".to_string(), Arg::Point(x, y));
    }
    if let (Some(x1), Some(y1), Some(x2), Some(y2)) = (
        num(&args, "x1"),
        num(&args, "y1"),
        num(&args, "x2"),
        num(&args, "y2"),
    ) {
        for k in ["x1", "y1", "x2", "y2"] {
            args.remove(k);
        }
        args.insert("box".to_string(), Arg::Box(BBox { x1, y1, x2, y2 }));
    }
    let mut out = BTreeMap::new();
    for (k, v) in args {
        let is_loc = matches!(v, Arg::Point(..) | Arg::Box(_));
        let k = match k.as_str() {
            k if is_loc && TARGET_KEYS.contains(&k) => "target".to_string(),
            "start_point" => "start".to_string(),
            "end_point" => "end".to_string(),
            "content" => "text".to_string(),
            _ => k,
        };
        out.insert(k, v);
    }
    Action {
        kind: kind.trim().to_lowercase(),
        args: out,
    }
}

/// A small cursor over the call syntax.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i..).and_then(|r| r.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    fn string(&mut self, quote: char) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated string".to_string()),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c) => out.push(c),
                    None => return Err("unterminated string".to_string()),
                },
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// A bracketed list of numbers, flattened (nesting up to 4 levels).
    fn number_list(&mut self) -> Result<Vec<f64>, String> {
        let mut depth = 0usize;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some('[' | '(') => {
                    depth += 1;
                    if depth > 4 {
                        return Err("list nested too deeply".to_string());
                    }
                    self.bump();
                }
                Some(']' | ')') => {
                    self.bump();
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                Some(',') => {
                    self.bump();
                }
                Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => {
                    out.push(self.number()?);
                    if out.len() > 4 {
                        return Err("too many numbers in a list".to_string());
                    }
                }
                _ => return Err("a list holds only numbers".to_string()),
            }
        }
    }

    fn number(&mut self) -> Result<f64, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.bump();
        }
        self.s[start..self.i]
            .parse::<f64>()
            .map_err(|_| format!("bad number \"{}\"", excerpt(&self.s[start..self.i])))
    }

    fn value(&mut self) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                self.string(q).map(Arg::Text)
            }
            Some('[' | '(') => match *self.number_list()?.as_slice() {
                [x, y] => Ok(Arg::Point(x, y)),
                [x1, y1, x2, y2] => Ok(Arg::Box(BBox { x1, y1, x2, y2 })),
                _ => Err("a list must hold 2 or 4 numbers".to_string()),
            },
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => {
                self.number().map(Arg::Num)
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                Ok(Arg::Text(self.ident().unwrap_or_default().to_string()))
            }
            _ => Err("expected a value".to_string()),
        }
    }
}

/// `name(arg, key=value, …)`, after any leading text.
fn parse_call(text: &str) -> Result<Action, String> {
    // The first identifier directly followed by `(`.
    let bytes = text.as_bytes();
    let open = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| {
            b == b'(' && i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
        })
        .ok_or("neither JSON nor a call like `click(x=1, y=2)`")?;
    let start = bytes[..open]
        .iter()
        .rposition(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .map_or(0, |p| p + 1);
    let name = &text[start..open];
    let mut c = Cursor {
        s: text,
        i: open + 1,
    };
    let mut named = BTreeMap::new();
    let mut positional = Vec::new();
    loop {
        c.skip_ws();
        if c.peek() == Some(')') {
            break;
        }
        // `key=value` or `key: value`, else a positional value.
        let save = c.i;
        let key = c.ident().map(str::to_string);
        c.skip_ws();
        match (key, c.peek()) {
            (Some(k), Some('=' | ':')) => {
                c.bump();
                let v = c.value()?;
                named.insert(k.to_lowercase(), v);
            }
            _ => {
                c.i = save;
                positional.push(c.value()?);
            }
        }
        if named.len() + positional.len() > 16 {
            return Err("too many arguments".to_string());
        }
        c.skip_ws();
        match c.bump() {
            Some(',') => {}
            Some(')') => break,
            _ => return Err("expected `,` or `)` in the call".to_string()),
        }
    }
    let kind = name.to_lowercase();
    if !positional.is_empty() {
        let key_for_text = match kind.as_str() {
            "press" | "key" | "hotkey" | "key_press" => "key",
            "scroll" | "swipe" => "direction",
            _ => "text",
        };
        let mapped: Vec<(&str, Arg)> = match positional.as_slice() {
            [Arg::Num(x), Arg::Num(y)] => vec![("target", Arg::Point(*x, *y))],
            [Arg::Num(x1), Arg::Num(y1), Arg::Num(x2), Arg::Num(y2)] => vec![(
                "target",
                Arg::Box(BBox {
                    x1: *x1,
                    y1: *y1,
                    x2: *x2,
                    y2: *y2,
                }),
            )],
            [p @ (Arg::Point(..) | Arg::Box(_))] => vec![("target", p.clone())],
            [s @ Arg::Point(..), e @ Arg::Point(..)] => {
                vec![("start", s.clone()), ("end", e.clone())]
            }
            [t @ Arg::Text(_)] => vec![(key_for_text, t.clone())],
            _ => return Err("unsupported positional arguments".to_string()),
        };
        for (k, v) in mapped {
            if named.insert(k.to_string(), v).is_some() {
                return Err(format!("argument `{k}` given twice"));
            }
        }
    }
    Ok(canonical(&kind, named))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(a: &str, g: &str) -> f64 {
        GuiVerifier::default().judge(a, g, None).score
    }

    #[test]
    fn table() {
        let click_pt = r#"{"action":"click","point":[500,500]}"#;
        let click_box = r#"{"action":"click","box":[400,400,600,600]}"#;
        let typ = r#"{"action":"type","text":"hello"}"#;
        let scroll = r#"{"action":"scroll","direction":"down"}"#;
        let drag = r#"{"action":"drag","start":[100,100],"end":[300,300]}"#;
        let press = r#"{"action":"press","key":"enter"}"#;
        let cases: &[(&str, &str, f64)] = &[
            // points vs a gold point: full within 14, linear to 0 at 100
            (r#"{"action":"click","point":[500,500]}"#, click_pt, 1.0),
            (r#"{"action":"click","point":[509,509]}"#, click_pt, 1.0),
            ("click(x=500, y=557)", click_pt, 0.5),
            ("click(x=500, y=600)", click_pt, 0.0),
            ("CLICK(500, 500)", click_pt, 1.0),
            ("Action: click(point=[505, 495])", click_pt, 1.0),
            ("click(coordinate=(500,500))", click_pt, 1.0),
            ("click(box=[490,490,510,510])", click_pt, 1.0),
            // points vs a gold box: inside or not
            ("click(x=450, y=590)", click_box, 1.0),
            ("click(x=600, y=600)", click_box, 1.0),
            ("click(x=601, y=500)", click_box, 0.0),
            ("CLICK(box=[400,400,600,600])", click_box, 1.0),
            ("click(box=[400,400,600,700])", click_box, 1.0 / 1.5),
            // action type and key set must match
            ("double_click(x=500, y=500)", click_pt, 0.0),
            ("click(x=500, y=500, button=left)", click_pt, 0.0),
            (r#"{"action":"click"}"#, click_pt, 0.0),
            // text: LCS ratio
            ("type(text=\"hello\")", typ, 1.0),
            ("type('hello')", typ, 1.0),
            (r#"{"action":"type","content":"hello"}"#, typ, 1.0),
            ("type(text=\"help\")", typ, 2.0 * 3.0 / 9.0),
            ("type(text=\"Hello\")", typ, 0.8),
            ("type(text=\"\")", typ, 0.0),
            // names: case-insensitive exact
            ("scroll(direction=\"DOWN\")", scroll, 1.0),
            ("scroll(down)", scroll, 1.0),
            ("scroll(direction=up)", scroll, 0.0),
            ("press(key='Enter')", press, 1.0),
            ("press('enter')", press, 1.0),
            ("press(key='escape')", press, 0.0),
            // drag: product of two point scores
            ("drag(start=(100,100), end=(300,300))", drag, 1.0),
            ("drag((100,100), (300,300))", drag, 1.0),
            ("drag(start=(100,100), end=(300,357))", drag, 0.5),
            ("drag(start=(100,157), end=(300,357))", drag, 0.25),
            (
                r#"{"action":"drag","start_point":[100,100],"end_point":[300,300]}"#,
                drag,
                1.0,
            ),
            // junk
            ("click", click_pt, 0.0),
            ("", click_pt, 0.0),
            ("{not json", click_pt, 0.0),
            ("click(x=1, y=2", click_pt, 0.0),
            ("click(x=[1,2,3], y=2)", click_pt, 0.0),
        ];
        for &(a, g, want) in cases {
            let j = GuiVerifier::default().judge(a, g, None);
            assert!((j.score - want).abs() < 1e-9, "{a:?} vs {g}: {j:?}");
            assert_eq!(j.correct, want == 1.0, "{a:?}");
        }
    }

    #[test]
    fn alternatives_subscores_and_options() {
        let gold = r#"[{"action":"click","point":[100,100]},{"action":"press","key":"enter"}]"#;
        assert_eq!(score("press(key=enter)", gold), 1.0);
        assert_eq!(score("click(x=100,y=100)", gold), 1.0);
        assert_eq!(score("scroll(down)", gold), 0.0);
        let j = GuiVerifier::default().judge(
            "drag(start=(100,100), end=(300,357))",
            r#"{"action":"drag","start":[100,100],"end":[300,300]}"#,
            None,
        );
        assert_eq!(j.subscores["action"], 1.0);
        assert_eq!(j.subscores["start"], 1.0);
        assert!((j.subscores["end"] - 0.5).abs() < 1e-9);
        let v = GuiVerifier {
            text_case_sensitive: false,
            ..GuiVerifier::default()
        };
        assert!(
            v.judge(
                "type(text='HELLO')",
                r#"{"action":"type","text":"hello"}"#,
                None
            )
            .correct
        );
        let j = GuiVerifier::default().judge("scroll(up)", r#"{"action":"click"}"#, None);
        assert!(j.reason.unwrap_or_default().contains("action type"));
        let j = GuiVerifier::default().judge(
            "click(x=1,y=2,z=3)",
            r#"{"action":"click","x":1,"y":2}"#,
            None,
        );
        assert!(j.reason.unwrap_or_default().contains("extra [z]"));
        assert_eq!(lcs_len(&['a', 'b', 'c', 'd'], &['a', 'c', 'd']), 3);
    }

    #[test]
    fn adversarial_inputs() {
        let g = r#"{"action":"type","text":"hello"}"#;
        let big = format!("type(text=\"{}\")", "a".repeat(1 << 20));
        assert_eq!(score(&big, g), 0.0);
        let long = format!("type(text=\"{}\")", "a".repeat(5000));
        assert_eq!(score(&long, g), 0.0);
        let nested = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(score(&nested, g), 0.0);
        let call_nested = format!("click(x={})", "(".repeat(10_000));
        assert_eq!(score(&call_nested, g), 0.0);
        for junk in [
            "(", "((((", "a(", "a(b=", "a(b='", "a(b=\\", "\u{0}(", "é(x=1)", "_(",
        ] {
            assert_eq!(score(junk, g), 0.0, "{junk:?}");
        }
        assert_eq!(
            score("click(x=nan, y=1)", r#"{"action":"click","point":[1,1]}"#),
            0.0
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = GuiVerifier::default();
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
