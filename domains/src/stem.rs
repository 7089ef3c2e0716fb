//! STEM: solve an arithmetic or algebra problem shown only in the image.
//!
//! **Task.** The prompt says only "Solve the problem in the image"; the image holds
//! the problem in the built-in font with the `×`, `−`, `÷` and `²` glyphs: an
//! expression ending in `= ?` (`3 × 7 − 4 = ?`), a power (`6² − 11 = ?`), fraction
//! arithmetic (`1/2 + 2/3 = ?`, `(7 + 4) ÷ 3 = ?`) or a linear equation with the
//! question on its own line (`2x + 5 = 17` / `x = ?`, `3(x − 4) = 10` / `x = ?`).
//! `×` and `÷` bind tighter than `+` and `−`; `a/b` is a fraction.
//!
//! **Image.** Dark ink on a light page inside a thin frame, 32–96 pixels a side, the
//! size drawn per seed (never smaller than the text needs). A problem too wide for
//! one line is wrapped before an operator (so `= ?` may sit on its own line), and
//! written without spaces only if it still does not fit.
//!
//! **Answer.** [`Answer::Number`]: an integer or a reduced fraction `p/q` (sign in
//! front), exactly as the `math` verifier reads it.
//!
//! **Difficulty knobs** (monotone in `difficulty ∈ [0, 1]`):
//! - *operations*: 2 terms at 0 up to 4 at 1, each term a product or exact quotient
//!   with probability `0.3 + 0.5d`;
//! - *magnitude*: factors up to `6 + ⌊14d⌉`, addends up to `9 + ⌊81d⌉`;
//! - *problem kinds*: expressions only below 0.3; powers from 0.3; linear equations
//!   (two-line layout) from 0.45; fraction results from 0.65 (a third fraction
//!   with probability `d − 0.5`); equations with fractional roots and the
//!   `a(x − b) = c` form from 0.8. The newest kind unlocked is drawn half the time;
//! - *glyph scale*: 2 × below 0.4 when the problem fits, else 1 ×.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::{Canvas, Image, Rgb};
use crate::{font, glm_template, Answer, Domain, Sample};

/// Solve the problem drawn in the image (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stem;

const MIN_SIDE: i64 = 32;
const MAX_SIDE: i64 = 96;
const MARGIN: i64 = 3;

fn clamp_difficulty(d: f32) -> f32 {
    if d.is_finite() {
        d.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1) as i64
}

/// An exact rational with a positive denominator, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Q {
    n: i64,
    d: i64,
}

impl Q {
    fn new(n: i64, d: i64) -> Q {
        let (n, d) = if d < 0 { (-n, -d) } else { (n, d.max(1)) };
        let g = gcd(n, d);
        Q { n: n / g, d: d / g }
    }
    fn int(n: i64) -> Q {
        Q { n, d: 1 }
    }
    fn add(self, o: Q) -> Q {
        Q::new(self.n * o.d + o.n * self.d, self.d * o.d)
    }
    fn sub(self, o: Q) -> Q {
        Q::new(self.n * o.d - o.n * self.d, self.d * o.d)
    }
    fn mul(self, o: Q) -> Q {
        Q::new(self.n * o.n, self.d * o.d)
    }
    #[cfg_attr(not(test), allow(dead_code))] // used by the tests' reader
    fn div(self, o: Q) -> Q {
        if o.n == 0 {
            return self;
        }
        Q::new(self.n * o.d, self.d * o.n)
    }
    /// The answer's text: `-7`, `7/3`, `-7/3`.
    fn text(self) -> String {
        if self.d == 1 {
            self.n.to_string()
        } else {
            format!("{}/{}", self.n, self.d)
        }
    }
    /// As drawn in the image (minus sign `−`).
    fn shown(self) -> String {
        self.text().replace('-', "−")
    }
}

/// A number as drawn (minus sign `−`).
fn num(n: i64) -> String {
    Q::int(n).shown()
}

/// A problem: tokens to draw (`"\n"` forces a new line), the answer and the steps.
struct Problem {
    tokens: Vec<String>,
    answer: Q,
    steps: Vec<String>,
}

fn tok(s: &str) -> String {
    s.to_string()
}

/// `t1 ± t2 ± …` where each term is a number, a product or an exact quotient.
fn chain(rng: &mut ChaCha8Rng, d: f32) -> Problem {
    let n_terms = rng.random_range(2..=2 + (d * 2.0).round() as usize);
    let p_compound = 0.3 + 0.5 * f64::from(d);
    let fmax = 6 + (d * 14.0).round() as i64;
    let amax = 9 + (d * 81.0).round() as i64;
    let mut tokens = Vec::new();
    let mut first_steps = Vec::new();
    let mut values = Vec::new();
    let mut signs = Vec::new();
    for k in 0..n_terms {
        if k > 0 {
            let plus = rng.random_bool(0.5);
            signs.push(plus);
            tokens.push(tok(if plus { "+" } else { "−" }));
        }
        if rng.random_bool(p_compound) {
            let b = rng.random_range(2..=fmax.clamp(2, 9));
            let a = rng.random_range(2..=fmax);
            if rng.random_bool(0.5) {
                tokens.extend([a.to_string(), tok("×"), b.to_string()]);
                first_steps.push(format!("{a} × {b} = {}", a * b));
                values.push(a * b);
            } else {
                tokens.extend([(a * b).to_string(), tok("÷"), b.to_string()]);
                first_steps.push(format!("{} ÷ {b} = {a}", a * b));
                values.push(a);
            }
        } else {
            let a = rng.random_range(1..=amax);
            tokens.push(a.to_string());
            values.push(a);
        }
    }
    let mut total = values.first().copied().unwrap_or(0);
    let mut combine = Vec::new();
    for (plus, v) in signs.iter().zip(values.iter().skip(1)) {
        let next = if *plus { total + v } else { total - v };
        combine.push(format!(
            "{} {} {v} = {}",
            num(total),
            if *plus { "+" } else { "−" },
            num(next)
        ));
        total = next;
    }
    tokens.extend([tok("="), tok("?")]);
    let mut steps = Vec::new();
    if !first_steps.is_empty() {
        steps.push(format!(
            "Multiplication and division first: {}.",
            first_steps.join(", ")
        ));
    }
    if !combine.is_empty() {
        let lead = if steps.is_empty() {
            "Left to right"
        } else {
            "Then left to right"
        };
        steps.push(format!("{lead}: {}.", combine.join(", ")));
    }
    Problem {
        tokens,
        answer: Q::int(total),
        steps,
    }
}

/// `a² ± b` or `a² ± b × c`.
fn power(rng: &mut ChaCha8Rng, d: f32) -> Problem {
    let a = rng.random_range(2..=6 + (d * 9.0).round() as i64);
    let plus = rng.random_bool(0.5);
    let sq = a * a;
    let op = if plus { "+" } else { "−" };
    let (tokens_rest, b_val, b_step) = if d >= 0.6 && rng.random_bool(0.5) {
        let (b, c) = (rng.random_range(2..=9i64), rng.random_range(2..=9i64));
        (
            vec![b.to_string(), tok("×"), c.to_string()],
            b * c,
            Some(format!("{b} × {c} = {}", b * c)),
        )
    } else {
        let b = rng.random_range(1..=20 + (d * 40.0).round() as i64);
        (vec![b.to_string()], b, None)
    };
    let answer = if plus { sq + b_val } else { sq - b_val };
    let mut tokens = vec![format!("{a}²"), tok(op)];
    tokens.extend(tokens_rest);
    tokens.extend([tok("="), tok("?")]);
    let mut first = format!("{a}² = {sq}");
    if let Some(s) = b_step {
        first = format!("{first} and {s}");
    }
    Problem {
        tokens,
        answer: Q::int(answer),
        steps: vec![
            format!("{first}."),
            format!("{sq} {op} {b_val} = {}.", num(answer)),
        ],
    }
}

/// `a/b op c/d [± e/f] = ?` or `(a ± b) ÷ c = ?`, usually with a fractional result.
fn fraction(rng: &mut ChaCha8Rng, d: f32) -> Problem {
    if rng.random_bool(0.5) {
        let frac = |rng: &mut ChaCha8Rng| {
            let q = rng.random_range(2..=9i64);
            let p = rng.random_range(1..q);
            (p, q)
        };
        let (p1, q1) = frac(rng);
        let (p2, q2) = frac(rng);
        let (x, y) = (Q::new(p1, q1), Q::new(p2, q2));
        let (op, v) = match rng.random_range(0..3) {
            0 => ("+", x.add(y)),
            1 => ("−", x.sub(y)),
            _ => ("×", x.mul(y)),
        };
        let step = if op == "×" {
            format!(
                "{p1}/{q1} × {p2}/{q2} = {}/{} = {}.",
                p1 * p2,
                q1 * q2,
                v.shown()
            )
        } else {
            let l = q1 * q2 / gcd(q1, q2);
            format!(
                "Over the common denominator {l}: {}/{l} {op} {}/{l} = {}.",
                p1 * (l / q1),
                p2 * (l / q2),
                v.shown()
            )
        };
        let mut tokens = vec![format!("{p1}/{q1}"), tok(op), format!("{p2}/{q2}")];
        let mut steps = vec![step];
        let mut answer = v;
        // A third fraction, added or subtracted after the first result.
        if rng.random_bool(f64::from(d - 0.5).clamp(0.0, 1.0)) {
            let (p3, q3) = frac(rng);
            let plus = rng.random_bool(0.5);
            let z = Q::new(p3, q3);
            answer = if plus { v.add(z) } else { v.sub(z) };
            let op3 = if plus { "+" } else { "−" };
            tokens.extend([tok(op3), format!("{p3}/{q3}")]);
            steps.push(format!(
                "Then {} {op3} {p3}/{q3} = {}.",
                v.shown(),
                answer.shown()
            ));
        }
        tokens.extend([tok("="), tok("?")]);
        Problem {
            tokens,
            answer,
            steps,
        }
    } else {
        let c = rng.random_range(2..=9i64);
        let a = rng.random_range(1..=30i64);
        let b = rng.random_range(1..=20i64);
        let plus = rng.random_bool(0.5);
        let inner = if plus { a + b } else { a - b };
        let v = Q::new(inner, c);
        let op = if plus { "+" } else { "−" };
        Problem {
            tokens: vec![
                format!("({a}"),
                tok(op),
                format!("{b})"),
                tok("÷"),
                c.to_string(),
                tok("="),
                tok("?"),
            ],
            answer: v,
            steps: vec![
                format!("The bracket first: {a} {op} {b} = {}.", num(inner)),
                format!("Then {} ÷ {c} = {}.", num(inner), v.shown()),
            ],
        }
    }
}

/// `ax ± b = c` (or `a(x ± b) = c` when `hard`), asked as `x = ?` on a second line.
fn equation(rng: &mut ChaCha8Rng, d: f32, hard: bool) -> Problem {
    let a = rng.random_range(2..=4 + (d * 8.0).round() as i64);
    let b = rng.random_range(1..=9 + (d * 30.0).round() as i64);
    let plus = rng.random_bool(0.5);
    let sb = if plus { b } else { -b };
    let op = if plus { "+" } else { "−" };
    let inv = if plus { "−" } else { "+" };
    let bracket = hard && rng.random_bool(0.5);
    let fractional = hard && rng.random_bool(0.5);
    let x = if fractional {
        // Any right-hand side: the root is usually a fraction.
        Q::int(0)
    } else {
        Q::int(rng.random_range(-9..=12 + (d * 10.0).round() as i64))
    };
    let (lhs, c, steps, answer) = if bracket {
        // a(x + sb) = c.
        let c = if fractional {
            rng.random_range(-40..=60i64)
        } else {
            a * (x.n + sb)
        };
        let answer = Q::new(c, a).sub(Q::int(sb));
        let inner = Q::new(c, a);
        (
            vec![format!("{a}(x"), tok(op), format!("{b})")],
            c,
            vec![
                format!("Divide both sides by {a}: x {op} {b} = {}.", inner.shown()),
                format!("Then x = {} {inv} {b} = {}.", inner.shown(), answer.shown()),
            ],
            answer,
        )
    } else {
        // a·x + sb = c.
        let c = if fractional {
            rng.random_range(-40..=90i64)
        } else {
            a * x.n + sb
        };
        let rest = c - sb;
        let answer = Q::new(rest, a);
        (
            vec![format!("{a}x"), tok(op), b.to_string()],
            c,
            vec![
                format!(
                    "{} {b} {} both sides: {a}x = {}.",
                    if plus { "Subtract" } else { "Add" },
                    if plus { "from" } else { "to" },
                    num(rest)
                ),
                format!("Divide by {a}: x = {}/{a} = {}.", num(rest), answer.shown()),
            ],
            answer,
        )
    };
    let mut tokens = lhs;
    tokens.extend([tok("="), num(c), tok("\n"), tok("x"), tok("="), tok("?")]);
    Problem {
        tokens,
        answer,
        steps,
    }
}

fn problem(rng: &mut ChaCha8Rng, d: f32) -> Problem {
    // Kinds unlocked in order; the newest is drawn half the time.
    let mut kinds = vec![0usize];
    for (k, at) in [(1, 0.3), (2, 0.45), (3, 0.65), (4, 0.8)] {
        if d >= at {
            kinds.push(k);
        }
    }
    let newest = kinds.last().copied().unwrap_or(0);
    let kind = if rng.random_bool(0.5) {
        newest
    } else {
        kinds
            .get(rng.random_range(0..kinds.len()))
            .copied()
            .unwrap_or(0)
    };
    match kind {
        0 => chain(rng, d),
        1 => power(rng, d),
        2 => equation(rng, d, false),
        3 => fraction(rng, d),
        _ => equation(rng, d, true),
    }
}

/// Greedy lines of `seg` joined by `sep`, breaking only before an operator (an
/// operator stays with the operand after it) where a line would get wider than `room`.
fn wrap(seg: &[String], sep: &str, scale: i64, room: i64) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut pending_op: Option<&String> = None;
    for t in seg {
        if matches!(t.as_str(), "+" | "−" | "×" | "÷" | "=") {
            pending_op = Some(t);
        } else if let Some(op) = pending_op.take() {
            chunks.push(format!("{op}{sep}{t}"));
        } else {
            chunks.push(t.clone());
        }
    }
    if let Some(op) = pending_op {
        chunks.push(op.clone());
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for c in chunks {
        let candidate = if line.is_empty() {
            c.clone()
        } else {
            format!("{line}{sep}{c}")
        };
        if !line.is_empty() && Canvas::text_width(&candidate, scale) > room {
            lines.push(std::mem::take(&mut line));
            line = c;
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lays tokens out in lines no wider than `room` at `scale`: spaced on one line per
/// segment if that fits, else spaced and wrapped before an operator, else without
/// spaces (wrapped if need be). `None` when nothing fits in three lines.
fn layout(tokens: &[String], scale: i64, room: i64, may_wrap: bool) -> Option<Vec<String>> {
    let segments: Vec<&[String]> = tokens.split(|t| t == "\n").collect();
    let fits = |lines: &[String]| {
        lines.len() <= 3 && lines.iter().all(|l| Canvas::text_width(l, scale) <= room)
    };
    let mut tries: Vec<Vec<String>> = Vec::new();
    tries.push(segments.iter().map(|seg| seg.join(" ")).collect());
    if may_wrap {
        tries.push(
            segments
                .iter()
                .flat_map(|seg| wrap(seg, " ", scale, room))
                .collect(),
        );
        tries.push(
            segments
                .iter()
                .flat_map(|seg| wrap(seg, "", scale, room))
                .collect(),
        );
    }
    tries.into_iter().find(|lines| fits(lines))
}

/// A rendered STEM task.
// Some fields are only read by the tests (pixel checks).
#[cfg_attr(not(test), allow(dead_code))]
struct Scene {
    image: Image,
    lines: Vec<String>,
    scale: i64,
    ink: Rgb,
    problem: Problem,
}

fn render(seed: u64, difficulty: f32) -> Scene {
    let d = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let room = MAX_SIDE - 2 * MARGIN;
    // Regenerate (bounded) in the unlikely case a problem cannot be laid out.
    let mut chosen = None;
    for _ in 0..8 {
        let p = problem(&mut rng, d);
        // Large glyphs only for a problem that fits spaced, one line per segment.
        let big = if d < 0.4 {
            layout(&p.tokens, 2, room, false)
        } else {
            None
        };
        let laid = match big {
            Some(lines) => Some((lines, 2)),
            None => layout(&p.tokens, 1, room, true).map(|l| (l, 1)),
        };
        if let Some((lines, scale)) = laid {
            chosen = Some((p, lines, scale));
            break;
        }
    }
    let (problem, lines, scale) = chosen.unwrap_or_else(|| {
        let p = Problem {
            tokens: vec![tok("2"), tok("+"), tok("3"), tok("="), tok("?")],
            answer: Q::int(5),
            steps: vec!["2 + 3 = 5.".to_string()],
        };
        (p, vec!["2 + 3 = ?".to_string()], 2)
    });

    let glyph_h = font::HEIGHT as i64 * scale;
    let gap = 3 * scale;
    let n = lines.len() as i64;
    let block_w = lines
        .iter()
        .map(|l| Canvas::text_width(l, scale))
        .max()
        .unwrap_or(0);
    let block_h = n * glyph_h + (n - 1) * gap;
    let min_w = (block_w + 2 * MARGIN).clamp(MIN_SIDE, MAX_SIDE);
    let min_h = (block_h + 2 * MARGIN).clamp(MIN_SIDE, MAX_SIDE);
    let w = rng.random_range(min_w..=(min_w + 40).min(MAX_SIDE));
    let h = rng.random_range(min_h..=(min_h + 40).min(MAX_SIDE));
    let page: Rgb = [
        rng.random_range(235..=255),
        rng.random_range(235..=255),
        rng.random_range(225..=250),
    ];
    let ink: Rgb = [
        rng.random_range(10..=40),
        rng.random_range(10..=40),
        rng.random_range(10..=90),
    ];
    let frame: Rgb = [170, 170, 180];
    let mut canvas = Canvas::new(w as u32, h as u32, page);
    canvas.rect(0, 0, w, h, frame);
    let x0 = MARGIN + rng.random_range(0..=(w - 2 * MARGIN - block_w).max(0));
    let y0 = MARGIN + rng.random_range(0..=(h - 2 * MARGIN - block_h).max(0));
    for (k, line) in lines.iter().enumerate() {
        canvas.text(x0, y0 + k as i64 * (glyph_h + gap), line, scale, ink);
    }
    Scene {
        image: canvas.finish(),
        lines,
        scale,
        ink,
        problem,
    }
}

impl Domain for Stem {
    fn name(&self) -> &str {
        "stem"
    }

    fn verifier(&self) -> &str {
        "math"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let scene = render(seed, difficulty);
        let answer = Answer::number(scene.problem.answer.text());
        let shown = match scene.lines.as_slice() {
            [one] => format!("The image shows \"{one}\"."),
            lines => format!(
                "The image shows {} lines: {}.",
                lines.len(),
                lines
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(", then ")
            ),
        };
        let think = format!("{shown} {}", scene.problem.steps.join(" "));
        let template = glm_template(&think, "The answer is ", &answer.response());
        Sample::new(
            "stem",
            "Solve the problem in the image. Give the exact answer (an integer or a reduced fraction such as 7/3) in a box.".to_string(),
            vec![scene.image],
            answer,
            difficulty,
            template,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    /// An independent reader of the drawn problem: a tiny recursive-descent parser
    /// over the shown text (`×`, `÷`, `/`, `²`, brackets, implicit `2x`, `3(…)`).
    struct Reader {
        chars: Vec<char>,
        at: usize,
        x: Q,
    }

    impl Reader {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.at).copied()
        }
        fn expr(&mut self) -> Q {
            let mut v = self.term();
            while let Some(c) = self.peek() {
                match c {
                    '+' => {
                        self.at += 1;
                        v = v.add(self.term());
                    }
                    '−' => {
                        self.at += 1;
                        v = v.sub(self.term());
                    }
                    _ => break,
                }
            }
            v
        }
        fn term(&mut self) -> Q {
            let mut v = self.factor();
            while let Some(c) = self.peek() {
                match c {
                    '×' => {
                        self.at += 1;
                        v = v.mul(self.factor());
                    }
                    '÷' | '/' => {
                        self.at += 1;
                        v = v.div(self.factor());
                    }
                    'x' | '(' => v = v.mul(self.factor()),
                    _ => break,
                }
            }
            v
        }
        fn factor(&mut self) -> Q {
            let mut v = match self.peek() {
                Some('−') => {
                    self.at += 1;
                    return Q::int(0).sub(self.factor());
                }
                Some('(') => {
                    self.at += 1;
                    let v = self.expr();
                    assert_eq!(self.peek(), Some(')'));
                    self.at += 1;
                    v
                }
                Some('x') => {
                    self.at += 1;
                    self.x
                }
                _ => {
                    let mut n = 0i64;
                    let start = self.at;
                    while let Some(c) = self.peek().and_then(|c| c.to_digit(10)) {
                        n = n * 10 + i64::from(c);
                        self.at += 1;
                    }
                    assert!(self.at > start, "no number at {start} in {:?}", self.chars);
                    Q::int(n)
                }
            };
            if self.peek() == Some('²') {
                self.at += 1;
                v = v.mul(v);
            }
            v
        }
    }

    fn eval(s: &str, x: Q) -> Q {
        let mut r = Reader {
            chars: s.chars().filter(|c| *c != ' ').collect(),
            at: 0,
            x,
        };
        let v = r.expr();
        assert_eq!(r.at, r.chars.len(), "unparsed rest of {s}");
        v
    }

    /// Solves what the image shows: `E = ?` or `L = R` then `x = ?`.
    fn solve_shown(lines: &[String]) -> Q {
        let all: String = lines.concat().replace(' ', "");
        let last = lines.last().map(|l| l.replace(' ', ""));
        if lines.len() < 2 || last.as_deref() != Some("x=?") {
            let e = all.strip_suffix("=?").expect("ends in = ?");
            return eval(e, Q::int(0));
        }
        let eq = all.strip_suffix("x=?").expect("an equation");
        let (l, r) = eq.split_once('=').expect("one equals sign");
        let f = |x: Q| eval(l, x).sub(eval(r, x));
        let (f0, f1) = (f(Q::int(0)), f(Q::int(1)));
        Q::int(0).sub(f0).div(f1.sub(f0))
    }

    #[test]
    fn the_drawn_problem_has_the_gold_answer() {
        for seed in 0..400u64 {
            let d = (seed % 11) as f32 / 10.0;
            let scene = render(seed, d);
            assert_eq!(
                solve_shown(&scene.lines),
                scene.problem.answer,
                "{:?}",
                scene.lines
            );
            // Every shown glyph is in the font and drawn in ink (and nothing else is).
            let mut expected = 0usize;
            for c in scene.lines.concat().chars() {
                assert!(font::has(c), "{c:?}");
                let bits: u32 = font::glyph(c).iter().map(|r| r.count_ones()).sum();
                expected += bits as usize * (scene.scale * scene.scale) as usize;
            }
            assert_eq!(scene.image.count(scene.ink), expected, "seed {seed}");
            // Answers are reduced.
            let a = scene.problem.answer;
            assert!(a.d >= 1 && gcd(a.n, a.d) == 1);
        }
    }

    #[test]
    fn difficulty_grows_the_problem() {
        let mean = |d: f32, f: &dyn Fn(&Scene) -> f64| {
            (0..100u64).map(|s| f(&render(s, d))).sum::<f64>() / 100.0
        };
        let glyphs: Vec<f64> = LEVELS
            .iter()
            .map(|&d| {
                mean(d, &|s| {
                    s.lines.concat().replace(' ', "").chars().count() as f64
                })
            })
            .collect();
        // Symbols: operators, brackets, unknowns, signs (everything but digits).
        let operators: Vec<f64> = LEVELS
            .iter()
            .map(|&d| {
                mean(d, &|s| {
                    s.lines
                        .concat()
                        .chars()
                        .filter(|c| !c.is_ascii_digit() && !c.is_whitespace())
                        .count() as f64
                })
            })
            .collect();
        for series in [&glyphs, &operators] {
            assert!(series.windows(2).all(|w| w[1] >= w[0]), "{series:?}");
            assert!(series[4] > series[0], "{series:?}");
        }
        let lines = |d: f32| mean(d, &|s| s.lines.len() as f64);
        assert!(lines(1.0) > lines(0.0));
    }
}
