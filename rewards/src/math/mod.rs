//! Math/STEM answer equivalence: is the model's final answer the gold answer?
//!
//! [`MathVerifier`] judges an extracted answer (the text inside the box) against the
//! gold answer. Both go through the same pipeline:
//!
//! 1. **Bounds.** Inputs longer than [`MAX_INPUT_LEN`] bytes or nested deeper than
//!    [`MAX_NESTING`] are not parsed: they match only when byte-identical (after
//!    trimming). The parser has its own depth bound and the evaluator caps exponents
//!    and factorials, so every judgement is fast whatever the input.
//! 2. **Boxes.** `\boxed{…}` / `\fbox{…}` in either side is replaced by its contents
//!    (several boxes become a comma list); a long gold solution without a box gives
//!    the `$…$` after its last "final answer is", else goes through lenient
//!    extraction ([`crate::extract::extract_lenient`]).
//! 3. **Normalisation** ([`normalize_answer`]): delimiters (`$…$`, `\(…\)`, `\[…\]`),
//!    a trailing period, `\left`/`\right`, spacing (`\,` `\!` `\;` `\quad` `~`),
//!    `\text{}`/`\mathrm{}`/`\mbox{}`/`\textbf{}` wrappers, `\dfrac`/`\tfrac`,
//!    unicode (`π √ ∞ ≤ ≥ ± × · ° −`), thousands separators (`1,000`, `1 000`,
//!    `1{,}000`, only when every later group has three digits, so `(1,000, 2)` stays
//!    a pair and `1,2` a list).
//! 4. **Parsing** into an expression tree: numbers (integers, decimals, `6.02e23`,
//!    repeating decimals `0.\overline{3}`, `0.(3)`, `0.\dot{3}`, mixed numbers
//!    `2\frac34` and `2 1/2`), `\frac`, `\sqrt[n]{}`, powers, `!`, `\binom`, functions
//!    (`sin … arctan`, `sinh`, `ln`, `\log_b`, `exp`, `|x|`), constants (`\pi`, `e`,
//!    `\infty`), implicit multiplication (`2x`, `2\pi`, `x y`, `2(x+1)`), `%`,
//!    degrees (`^\circ`), `±`, relations (`= < > \le \ge \ne \approx \in`), tuples,
//!    intervals, `\{…\}` sets, `\emptyset`, `\mathbb{R}`, unions (`\cup`), comma
//!    lists ("and" and "or" are commas; `;` separates groups of a `,` list), ratios
//!    `a:b`, `\lfloor \rfloor`, `\lceil \rceil`, and
//!    `pmatrix`/`bmatrix`/`matrix`/`array` matrices (with constant `+`, `−`, products).
//! 5. **Comparison** (see below); anything that does not parse is compared as text
//!    (case-, space- and punctuation-insensitive, `yes`/`true` and `no`/`false`
//!    are synonyms).
//!
//! # Conventions
//!
//! * **Exact first.** Rational values are computed exactly (`i128`, checked) and
//!   compared exactly: `\frac{6}{8}` = `3/4` = `0.75`, `3\cdot4` = `12`,
//!   `6.02\times10^{23}` = `6.02e23`, `9.1e-31` ≠ `9.1e-30`.
//! * **Irrational values** (`\sqrt2`, `\pi`, `\ln 2`) are compared in `f64` with a
//!   relative tolerance ([`MathVerifier::rel_tol`], default 1e-6): `\sqrt8` =
//!   `2\sqrt2`, `\frac{1}{\sqrt2}` = `\frac{\sqrt2}{2}`.
//! * **Decimal approximations are wrong by default.** A decimal that is not exactly
//!   the gold's value counts only when it has at least
//!   [`MathConventions::min_decimal_digits`] (7) significant digits and is within
//!   `rel_tol`: `1/3` vs `0.333` ✗, `\sqrt2` vs `1.414` ✗, `\pi` vs `3.14` ✗, but
//!   `\sqrt2` vs `1.41421356` ✓. A gold whose value is a finite decimal must be
//!   matched exactly (`1/4` vs `0.2500001` ✗). With a request tolerance
//!   ([`Tolerance`]) any two values within it match (`Rel(0.01)`: `0.333` = `1/3`).
//! * **Expressions with variables** are evaluated at seeded pseudo-random points
//!   (positive and negative; deterministic): `(x+1)^2` = `x^2+2x+1`. Different free
//!   variables are different answers.
//! * **Equations.** `x=3` and `3` match either way round (a left side with no
//!   numbers, such as `x`, `f(x)`, `|AB|` or `(p,q)`, is a label); `y=2x+1` =
//!   `2x+1=y`; equations match up to a non-zero factor (`2x+2y=4` = `x+y=2`). In a
//!   chain `x = 5+5+1 = 11` the last value counts (the last before any `\approx`).
//! * **Inequalities and intervals.** `x>2` = `(2,\infty)`, `2<x\le5` = `(2,5]`,
//!   `-x>-1` = `x<1`; endpoints and open/closed ends must match; unions compare as
//!   sets of intervals; `(a,b)` counts as an open interval only against an interval.
//!   A one-variable inequality that is not linear (`1 \le |z| \le 2`, `x^2 < 4`) is
//!   checked against an interval set at its endpoints, beside them and between them.
//! * **Collections.** `\{…\}` sets and bare comma lists (lists of solutions) are
//!   unordered: `x=1, x=2` = `1,2` = `2,1`; `1\pm\sqrt2` is the list `1+\sqrt2,
//!   1-\sqrt2` and `x=\pm2` is `2,-2`. Tuples `(1,2)` are ordered; a column or row
//!   vector equals the tuple of its entries; matrices compare elementwise.
//! * **Percent.** `25%` is `0.25`; against a gold with `%` the bare `25` is also
//!   accepted (and vice versa) — configurable ([`MathConventions::percent_flexible`]).
//! * **Degrees.** `30^\circ` = `30`. Against a gold in degrees, an answer in radians
//!   written with π (`\frac{\pi}{6}`) is accepted
//!   ([`MathConventions::radians_for_degrees`]).
//! * **Units** (the `physics` verifier, [`MathVerifier::units`]): `5 cm` = `0.05 m`,
//!   `5 cm` ≠ `5 m`; SI prefixes, base and derived units with `/`, `\cdot`, powers;
//!   °C and °F only compare with the same unit. A bare number against a gold with a
//!   unit is compared in the gold's unit ([`MathConventions::bare_number_for_unit`]).
//!   Without `units`, a trailing unit or word is ignored (`5\text{ cm}` = `5`).
//! * **Complex numbers.** When `i` is the only variable on both sides it is the
//!   imaginary unit: `\frac{1}{1+i}` = `\frac{1-i}{2}`, `i^2` = `-1`, `\sqrt{-4}` =
//!   `2i` (principal values; compared in `f64` within `rel_tol`).
//! * **Huge numbers.** Integer expressions beyond `i128` (`2^{200}`, `40!`, long
//!   literals) compare exactly with a bounded big integer (up to 8192 bits).
//!   Anything else beyond exact range falls back to `f64`; a value that overflows to
//!   infinity equals nothing (except an identical string).
//! * **Logarithms.** `\ln` and `\log` are natural (as in SymPy); `\lg` is base 10;
//!   `\log_b x` has base `b`.
//! * **Trailing prose.** An answer that does not parse is cut once at its first
//!   sentence break (`$100$. I hope it is correct` → `100`); trailing words after a
//!   value are ignored (`5 apples` = `5`) unless units are compared.

mod expr;
mod latex;
mod number;
mod units;

pub use number::Number;

use crate::{excerpt, Judgement, Tolerance, Verifier};
use expr::{Env, Expr, Id, Names, Node, RelOp, Sign};

/// Longest input (bytes, after trimming) that is parsed; longer inputs match only
/// when identical.
pub const MAX_INPUT_LEN: usize = 10_000;
/// Deepest bracket nesting that is parsed; deeper inputs match only when identical.
pub const MAX_NESTING: usize = 64;
/// Longest normalised text (in bytes) that [`parse_number`] will consider a number.
pub const MAX_NUMBER_LEN: usize = 4096;

/// Configurable grading conventions of [`MathVerifier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MathConventions {
    /// Fewest significant digits a decimal answer needs to match a value it cannot
    /// represent exactly (an irrational or repeating value) within `rel_tol`
    /// (default 7; fewer digits must match exactly).
    pub min_decimal_digits: u8,
    /// Against a gold with `%`, also accept the bare number (`25` for `25%`), and a
    /// `%` answer against a bare gold (default true).
    pub percent_flexible: bool,
    /// Against a gold in degrees, accept radians written with π (default true).
    pub radians_for_degrees: bool,
    /// With units on: a bare number matches a gold with a unit when equal in the
    /// gold's unit (default true). A wrong unit never matches.
    pub bare_number_for_unit: bool,
    /// Bare comma lists are unordered (lists of solutions; default true). Tuples in
    /// parentheses are always ordered.
    pub unordered_lists: bool,
}

impl Default for MathConventions {
    fn default() -> Self {
        MathConventions {
            min_decimal_digits: 7,
            percent_flexible: true,
            radians_for_degrees: true,
            bare_number_for_unit: true,
            unordered_lists: true,
        }
    }
}

/// Scores math/STEM answers: exact, numeric, symbolic and structural comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MathVerifier {
    /// Relative tolerance for values that are not both exact (irrational values,
    /// expressions evaluated at sample points).
    pub rel_tol: f64,
    /// Compare units (`5 cm` = `0.05 m`, `5 cm` != `5 m`): the `physics` verifier.
    pub units: bool,
    /// Grading conventions.
    pub conventions: MathConventions,
}

impl Default for MathVerifier {
    /// A relative tolerance of `1e-6`, no units, default conventions.
    fn default() -> Self {
        MathVerifier {
            rel_tol: 1e-6,
            units: false,
            conventions: MathConventions::default(),
        }
    }
}

/// The boxed part of an answer holding `\\boxed{…}` / `\\fbox{…}`, read with the same
/// rule as `boxed` extraction (the last box, or the last run of adjacent boxes as a list);
/// an unclosed box falls back to every box's contents. `None` without a box.
fn boxed_answer(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !s.contains("\\boxed") && !s.contains("\\fbox") {
        return None;
    }
    match crate::extract::extract_boxed(s) {
        Ok(a) => Some(a),
        Err(_) => latex::boxed_contents(s).map(|parts| std::borrow::Cow::Owned(parts.join(", "))),
    }
}

impl MathVerifier {
    /// The `physics` verifier: math with unit-aware comparison.
    pub fn physics() -> Self {
        MathVerifier {
            units: true,
            ..MathVerifier::default()
        }
    }

    /// Whether `answer` is equivalent to `gold` under this verifier's settings and
    /// an optional request tolerance.
    pub fn equivalent(&self, answer: &str, gold: &str, tolerance: Option<Tolerance>) -> bool {
        let ctx = Ctx {
            rel_tol: self.rel_tol,
            request: tolerance,
            conv: self.conventions,
            units: self.units,
        };
        ctx.equivalent(answer, gold)
    }
}

impl Verifier for MathVerifier {
    fn name(&self) -> &str {
        if self.units {
            "physics"
        } else {
            "math"
        }
    }

    fn judge(&self, answer: &str, gold: &str, tolerance: Option<Tolerance>) -> Judgement {
        if self.equivalent(answer, gold, tolerance) {
            Judgement::right()
        } else {
            Judgement::wrong(format!(
                "answer \"{}\" != gold \"{}\"",
                excerpt(answer),
                excerpt(gold)
            ))
        }
    }
}

/// Whether `answer` and `gold` denote the same answer, with the default conventions,
/// no units and relative tolerance `rel_tol` for inexact values.
pub fn answers_equivalent(answer: &str, gold: &str, rel_tol: f64) -> bool {
    MathVerifier {
        rel_tol,
        ..MathVerifier::default()
    }
    .equivalent(answer, gold, None)
}

/// Parses an answer written as a single number, after [`normalize_answer`].
///
/// Accepts integers (beyond `i128` as [`Number::Real`]), decimals (exact: `0.25` is
/// `1/4`), repeating decimals (`0.\overline{3}`), `a/b` and `\frac{a}{b}` of such
/// literals, mixed numbers (`2\frac{3}{4}`, `2 1/2`), a leading sign, scientific
/// notation (`6.02e23`, `6.02\times10^{23}`), percentages (`25%` is `1/4`) and degrees
/// (`90^\circ` is `90`). Arithmetic (`5-7`, `3\cdot4`, `\sqrt2`) is not a number
/// here (the verifier itself evaluates it). Returns `None` for anything else, for
/// division by zero, non-finite values and normalised text longer than
/// [`MAX_NUMBER_LEN`].
pub fn parse_number(s: &str) -> Option<Number> {
    let n = normalize_answer(s);
    if n.is_empty() || n.len() > MAX_NUMBER_LEN || latex::max_depth(&n) > MAX_NESTING {
        return None;
    }
    let mut names = Names::default();
    let e = expr::parse(&n, &mut names)?;
    if e.had_words || !number_shaped(&e, e.root, true) {
        return None;
    }
    match e.eval(e.root, &Env { vars: &[], pm: 1.0 }) {
        v @ Number::Rational { .. } => Some(v),
        Number::Real(x) => x.is_finite().then_some(Number::Real(x)),
    }
}

/// Whether a node is written as one number: a literal, a fraction of literals, a
/// mixed number, `a \times 10^k`, with a sign, `%` or `°` on the outside.
fn number_shaped(e: &Expr, id: Id, outer: bool) -> bool {
    let literal = |id: Id| matches!(e.node(id), Node::Num { .. } | Node::BigInt { .. });
    let signed = |id: Id| match e.node(id) {
        Node::Neg(x) => literal(*x),
        _ => literal(id),
    };
    let power_of_ten = |id: Id| match e.node(id) {
        Node::Pow(b, k) => {
            matches!(e.node(*b), Node::Num { v, .. } if *v == Number::int(10)) && signed(*k)
        }
        _ => false,
    };
    match e.node(id) {
        Node::Num { .. } | Node::BigInt { .. } => true,
        Node::Neg(x) => number_shaped(e, *x, false),
        Node::Percent(x) | Node::Degree(x) if outer => number_shaped(e, *x, false),
        Node::Prod(fs) if fs.len() == 2 => {
            let (a, b) = (fs[0], fs[1]);
            match (a.0, b.0) {
                (false, true) => signed(a.1) && signed(b.1),
                (false, false) => signed(a.1) && power_of_ten(b.1),
                _ => false,
            }
        }
        // A mixed number: `W a/b`.
        Node::Sum(terms) if terms.len() == 2 => {
            terms.iter().all(|t| t.0 == Sign::Plus)
                && literal(terms[0].1)
                && matches!(e.node(terms[1].1), Node::Prod(fs) if fs.len() == 2 && !fs[0].0 && fs[1].0 && literal(fs[0].1) && literal(fs[1].1))
        }
        _ => false,
    }
}

/// Normalises an answer for comparison: trims; strips surrounding `$…$`, `$$…$$`,
/// `\(…\)`, `\[…\]` and a trailing period; drops `\left`/`\right` and spacing
/// (`\!`, `\,`, `\;`, `\quad`, `~`); unwraps `\text{…}`, `\mathrm{…}` (and `\textrm`,
/// `\mathbf`, `\textbf`, `\mbox`, `\boxed`, …); rewrites `\dfrac`/`\tfrac` to `\frac`,
/// `\%` to `%`, `^\circ` to `°`, unicode symbols to commands; and removes thousands
/// separators (`1,000`, `1{,}000`, `1\,000`, `1 000`) only where every group after
/// the first has exactly three digits.
pub fn normalize_answer(s: &str) -> String {
    let s = latex::strip_wrappers(s);
    let rewritten = latex::rewrite(s);
    let grouped = latex::join_digit_groups(&rewritten);
    latex::strip_wrappers(&grouped).to_string()
}

/// Deterministic seed for sample points.
const SEED: u64 = 0x5eed_c0de_d15e_a5e5;
/// Sample points: the first ones positive, the rest negative.
const POINTS: u64 = 10;
const POSITIVE_POINTS: u64 = 7;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The value of variable `var` at sample point `t`.
fn sample(t: u64, var: usize) -> f64 {
    let h = splitmix(SEED ^ t.wrapping_mul(0x1000_0001) ^ (var as u64).wrapping_mul(0x9e37_79b9));
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let mag = 0.4 + 2.2 * u;
    if t < POSITIVE_POINTS {
        mag
    } else {
        -mag
    }
}

/// One comparison's settings.
struct Ctx {
    rel_tol: f64,
    request: Option<Tolerance>,
    conv: MathConventions,
    units: bool,
}

/// A pair of parsed answers sharing variable names.
struct Pair<'a> {
    a: &'a Expr,
    g: &'a Expr,
    nvars: usize,
    /// The variable `i`, read as the imaginary unit when it is the only one.
    imag: Option<u16>,
    ctx: &'a Ctx,
    /// Structural comparisons left (nested collections could otherwise blow up).
    budget: std::cell::Cell<u32>,
}

/// Most structural comparisons in one judgement.
const COMPARE_BUDGET: u32 = 20_000;

/// An interval bound: value (exact when possible) and closedness.
#[derive(Debug, Clone, Copy)]
struct Bound {
    v: Number,
    closed: bool,
}

impl Ctx {
    fn equivalent(&self, answer: &str, gold: &str) -> bool {
        let (answer, gold) = (answer.trim(), gold.trim());
        if answer == gold {
            return true;
        }
        if answer.len() > MAX_INPUT_LEN || gold.len() > MAX_INPUT_LEN {
            return false;
        }
        if self.equivalent_once(answer, gold) {
            return true;
        }
        // Trailing prose (`$100$. I hope it is correct`): an answer that does not parse
        // ends at its first sentence break. One alternative only, so hedging
        // (`5. Or 7`) gains nothing.
        match sentence_end(answer) {
            Some(cut)
                if expr::parse(&normalize_answer(answer), &mut Names::default()).is_none() =>
            {
                self.equivalent_once(cut, gold)
            }
            _ => false,
        }
    }

    fn equivalent_once(&self, answer: &str, gold: &str) -> bool {
        let a_owned;
        let answer = match boxed_answer(answer) {
            Some(a) => {
                a_owned = a;
                a_owned.as_ref()
            }
            None => answer,
        };
        let g_owned;
        let g_lenient;
        // A gold is authored, not generated: every box in it is part of the answer.
        let gold = match latex::boxed_contents(gold) {
            Some(parts) => {
                g_owned = parts.join(", ");
                g_owned.as_str()
            }
            None if gold.len() > 80 && looks_like_prose(gold) => match final_answer(gold) {
                Some(g) => g,
                None => {
                    g_lenient = crate::extract::extract_lenient(gold).ok();
                    g_lenient.as_deref().unwrap_or(gold)
                }
            },
            None => gold,
        };
        if latex::max_depth(answer) > MAX_NESTING || latex::max_depth(gold) > MAX_NESTING {
            return answer == gold;
        }
        let na = normalize_answer(answer);
        let ng = normalize_answer(gold);
        if na == ng || fold(&na) == fold(&ng) && !fold(&na).is_empty() {
            return true;
        }
        if self.units {
            if let Some(r) = self.compare_units(&na, &ng) {
                return r;
            }
        }
        if let Some(r) = self.compare_math(&na, &ng) {
            if r {
                return true;
            }
        } else if text_equal(&na, &ng) {
            return true;
        }
        // Alternative readings: a decimal comma (`1,22`), a dropped unit.
        let alt_a = latex::decimal_comma(&na);
        let alt_g = latex::decimal_comma(&ng);
        if alt_a.is_some() || alt_g.is_some() {
            let a2 = alt_a.as_deref().unwrap_or(&na);
            let g2 = alt_g.as_deref().unwrap_or(&ng);
            if self.compare_math(a2, g2) == Some(true) {
                return true;
            }
        }
        if !self.units {
            // Without unit checking a unit on one side is ignored; units on both sides
            // must still agree (`5 cm` is not `5 m`).
            match (units::split(&na), units::split(&ng)) {
                (Some(_), Some(_)) => return self.compare_units(&na, &ng) == Some(true),
                (Some((sa, _)), None) => return self.compare_math(sa, &ng) == Some(true),
                (None, Some((sg, _))) => return self.compare_math(&na, sg) == Some(true),
                (None, None) => {}
            }
        }
        false
    }

    /// Parses both sides and compares them; `None` when either does not parse.
    fn compare_math(&self, na: &str, ng: &str) -> Option<bool> {
        let mut names = Names::default();
        let a = expr::parse(na, &mut names)?;
        let g = expr::parse(ng, &mut names)?;
        let pair = Pair {
            a: &a,
            g: &g,
            nvars: names.len(),
            imag: names.find("i"),
            ctx: self,
            budget: std::cell::Cell::new(COMPARE_BUDGET),
        };
        Some(pair.top())
    }

    /// Unit-aware comparison; `None` when neither side has a unit.
    fn compare_units(&self, na: &str, ng: &str) -> Option<bool> {
        let ua = units::split(na);
        let ug = units::split(ng);
        match (ua, ug) {
            (None, None) => None,
            (Some((an, au)), Some((gn, gu))) => {
                if au.dims != gu.dims || au.affine != gu.affine {
                    return Some(false);
                }
                Some(self.compare_scaled(an, au.factor, gn, gu.factor))
            }
            (None, Some((gn, _))) => {
                if !self.conv.bare_number_for_unit {
                    return Some(false);
                }
                Some(self.compare_math(na, gn) == Some(true))
            }
            (Some((an, _)), None) => Some(self.compare_math(an, ng) == Some(true)),
        }
    }

    /// `an · fa` against `gn · fg` (constant expressions).
    fn compare_scaled(&self, an: &str, fa: Number, gn: &str, fg: Number) -> bool {
        let mut names = Names::default();
        let (Some(a), Some(g)) = (expr::parse(an, &mut names), expr::parse(gn, &mut names)) else {
            return false;
        };
        // `x = 5 m`: the value of a labelled equation.
        let value = |e: &Expr| match label_value(e, e.root) {
            Some((_, v)) => v,
            None => e.root,
        };
        let (ra, rg) = (value(&a), value(&g));
        if !a.is_scalar(ra) || !g.is_scalar(rg) || a.vars(ra) != 0 || g.vars(rg) != 0 {
            return false;
        }
        let env = Env { vars: &[], pm: 1.0 };
        let va = a.eval(ra, &env).mul(fa);
        let vg = g.eval(rg, &env).mul(fg);
        let pair = Pair {
            a: &a,
            g: &g,
            nvars: 0,
            imag: None,
            ctx: self,
            budget: std::cell::Cell::new(COMPARE_BUDGET),
        };
        pair.values_equal(va, vg, ra, rg)
    }
}

/// Whether `s` reads as prose (a worked solution) rather than an answer: at least
/// eight words of three or more letters outside LaTeX commands and `\text{}`.
fn looks_like_prose(s: &str) -> bool {
    let b = s.as_bytes();
    let mut words = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i - start >= 3 && (start == 0 || b[start - 1] != b'\\') {
                words += 1;
                if words >= 8 {
                    return true;
                }
            }
        } else {
            i += 1;
        }
    }
    false
}

/// The text before the first sentence break (`. ` then an upper-case letter).
fn sentence_end(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (1..b.len().saturating_sub(2))
        .find(|&i| {
            b[i] == b'.' && b[i + 1] == b' ' && b[i + 2].is_ascii_uppercase() && b[i - 1] != b'\\'
        })
        .map(|i| s[..i].trim())
        .filter(|t| !t.is_empty())
}

/// The answer after the last "final answer is" in a long gold solution: the
/// following `$…$` span, or the text up to the end of the sentence.
fn final_answer(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("final answer is")? + "final answer is".len();
    let rest = text
        .get(at..)?
        .trim_start()
        .trim_start_matches(':')
        .trim_start();
    if let Some(inner) = rest.strip_prefix('$') {
        let end = inner.find('$')?;
        return Some(&inner[..end]);
    }
    let end = rest.find(". ").unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.'))
}

/// Lower-cased, without whitespace (except one space between two digits, so that
/// `1 2` is not `12`).
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && c.is_ascii_digit() && out.ends_with(|p: char| p.is_ascii_digit()) {
            out.push(' ');
        }
        pending_space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// Text comparison: alphanumerics only, case-insensitive, with yes/no synonyms.
fn text_equal(a: &str, g: &str) -> bool {
    fn key(s: &str) -> String {
        // Alphanumeric words, lower-cased, one space apart.
        let mut k = String::with_capacity(s.len());
        for c in s.chars() {
            if c.is_alphanumeric() {
                k.extend(c.to_lowercase());
            } else if c.is_whitespace() && !k.is_empty() && !k.ends_with(' ') {
                k.push(' ');
            }
        }
        let k = k.trim_end();
        match k {
            "yes" | "true" | "correct" | "right" | "y" | "t" => "yes".to_string(),
            "no" | "false" | "incorrect" | "wrong" | "n" | "f" => "no".to_string(),
            _ => k.to_string(),
        }
    }
    let (ka, kg) = (key(a), key(g));
    !ka.is_empty() && ka == kg
}

/// An item of a collection: a node and the sign its `±` takes (0: none).
type Item = (Id, i8);

impl Pair<'_> {
    fn top(&self) -> bool {
        let (a, g) = (self.a.root, self.g.root);
        if self.eq(self.a, a, 0, self.g, g, 0) {
            return true;
        }
        let la = self.items(self.a, a);
        let lg = self.items(self.g, g);
        if la.len() > 1 || lg.len() > 1 {
            if self.ctx.conv.unordered_lists {
                return self.set_eq(&la, &lg);
            }
            return la.len() == lg.len()
                && la
                    .iter()
                    .zip(&lg)
                    .all(|(x, y)| self.eq(self.a, x.0, x.1, self.g, y.0, y.1));
        }
        false
    }

    /// The elements of a collection answer (lists, sets, `±`, labelled values).
    fn items(&self, e: &Expr, id: Id) -> Vec<Item> {
        let mut out = Vec::new();
        let top: Vec<Id> = match e.node(id) {
            Node::List(v) | Node::Set(v) => v.clone(),
            Node::Union(v) if !v.iter().any(|&p| is_interval_like(e, p)) => v.clone(),
            _ => vec![id],
        };
        for x in top {
            // A labelled value keeps its label (`a_3 = 2`); `x = \pm 2` is two items.
            let value = match label_value(e, x) {
                Some((Some(_), v)) => v,
                _ => x,
            };
            match e.node(x) {
                Node::List(v) | Node::Set(v) => out.extend(v.iter().map(|&y| (y, 0))),
                _ if e.is_scalar(value) && e.has_pm(value) => {
                    out.push((x, 1));
                    out.push((x, -1));
                }
                _ => out.push((x, 0)),
            }
            if out.len() > 256 {
                break;
            }
        }
        out
    }

    fn set_eq(&self, la: &[Item], lg: &[Item]) -> bool {
        if la.is_empty() || lg.is_empty() || la.len() > 128 || lg.len() > 128 {
            return false;
        }
        la.iter().all(|x| {
            lg.iter()
                .any(|y| self.eq(self.a, x.0, x.1, self.g, y.0, y.1))
        }) && lg.iter().all(|y| {
            la.iter()
                .any(|x| self.eq(self.a, x.0, x.1, self.g, y.0, y.1))
        })
    }

    /// Structural equivalence of node `x` of `ex` and node `y` of `ey`. The sides may
    /// be swapped (`ex` is then the gold); `values_equal` is told which is which.
    fn eq(&self, ex: &Expr, x: Id, px: i8, ey: &Expr, y: Id, py: i8) -> bool {
        let left = self.budget.get();
        if left == 0 {
            return false;
        }
        self.budget.set(left - 1);
        let (nx, ny) = (ex.node(x), ey.node(y));
        // Equations and labels.
        let rx = matches!(nx, Node::Rel { ops, .. } if ops.iter().all(|o| matches!(o, RelOp::Eq | RelOp::Approx)));
        let ry = matches!(ny, Node::Rel { ops, .. } if ops.iter().all(|o| matches!(o, RelOp::Eq | RelOp::Approx)));
        if rx || ry {
            if rx && ry && self.equation_eq(ex, x, px, ey, y, py) {
                return true;
            }
            let lx = if rx { label_value(ex, x) } else { None };
            let ly = if ry { label_value(ey, y) } else { None };
            return match (rx, ry, lx, ly) {
                (true, true, Some((la, va)), Some((lb, vb))) => {
                    let labels_ok = match (la, lb) {
                        (Some(la), Some(lb)) => self.eq(ex, la, 0, ey, lb, 0),
                        _ => true,
                    };
                    labels_ok && self.eq(ex, va, px, ey, vb, py)
                }
                (true, false, Some((_, va)), _) => {
                    self.eq(ex, va, px, ey, y, py) || self.coll_eq(ex, va, ey, y)
                }
                (false, true, _, Some((_, vb))) => {
                    self.eq(ex, x, px, ey, vb, py) || self.coll_eq(ex, x, ey, vb)
                }
                _ => false,
            };
        }
        // `x \in S`.
        if let Node::Rel { terms, ops } = nx {
            if ops.len() == 1 && ops[0] == RelOp::In {
                return self.eq(ex, terms[1], px, ey, y, py);
            }
        }
        if let Node::Rel { terms, ops } = ny {
            if ops.len() == 1 && ops[0] == RelOp::In {
                return self.eq(ex, x, px, ey, terms[1], py);
            }
        }
        // Intervals, inequalities, unions.
        let ix = is_interval_like(ex, x);
        let iy = is_interval_like(ey, y);
        if ix || iy {
            match (self.intervals(ex, x, iy), self.intervals(ey, y, ix)) {
                (Some(a), Some(b)) => return self.interval_sets_eq(a, b),
                (Some(set), None) => return self.same_truth_set(ey, y, &set),
                (None, Some(set)) => return self.same_truth_set(ex, x, &set),
                (None, None) => {}
            }
            if let (Node::Rel { terms: ta, ops: oa }, Node::Rel { terms: tb, ops: ob }) = (nx, ny) {
                return oa == ob
                    && ta.len() == tb.len()
                    && ta
                        .iter()
                        .zip(tb)
                        .all(|(&p, &q)| self.eq(ex, p, px, ey, q, py));
            }
            return false;
        }
        match (nx, ny) {
            (Node::Tuple(u), Node::Tuple(v))
            | (Node::Bracket(u), Node::Bracket(v))
            | (Node::Ratio(u), Node::Ratio(v))
            | (Node::Tuple(u), Node::List(v))
            | (Node::List(u), Node::Tuple(v)) => self.seq_eq(ex, u, px, ey, v, py),
            (Node::List(u), Node::List(v)) if !self.ctx.conv.unordered_lists => {
                self.seq_eq(ex, u, px, ey, v, py)
            }
            (Node::Set(u), Node::Set(v)) if u.is_empty() || v.is_empty() => {
                u.is_empty() && v.is_empty()
            }
            (Node::Set(_) | Node::List(_), Node::Set(_) | Node::List(_)) => {
                self.coll_eq(ex, x, ey, y)
            }
            (Node::Matrix { cols: c1, cells: u }, Node::Matrix { cols: c2, cells: v }) => {
                c1 == c2 && self.seq_eq(ex, u, px, ey, v, py)
            }
            (Node::Matrix { cols, cells }, Node::Tuple(v) | Node::Bracket(v))
                if *cols == 1 || *cols as usize == cells.len() =>
            {
                self.seq_eq(ex, cells, px, ey, v, py)
            }
            (Node::Tuple(u) | Node::Bracket(u), Node::Matrix { cols, cells })
                if *cols == 1 || *cols as usize == cells.len() =>
            {
                self.seq_eq(ex, u, px, ey, cells, py)
            }
            _ if has_matrix(ex, x) || has_matrix(ey, y) => {
                // Constant matrix arithmetic: `A + B`, `A B`, `2A`.
                match (matrix_value(ex, x, 0), matrix_value(ey, y, 0)) {
                    (Some((c1, u)), Some((c2, v))) => {
                        c1 == c2
                            && u.len() == v.len()
                            && u.iter()
                                .zip(&v)
                                .all(|(&p, &q)| self.values_equal(p, q, x, y))
                    }
                    _ => false,
                }
            }
            _ => {
                if ex.is_scalar(x) && ey.is_scalar(y) {
                    if (px == 0 && ex.has_pm(x)) != (py == 0 && ey.has_pm(y)) {
                        return false;
                    }
                    if px == 0 && ex.has_pm(x) {
                        return (self.scalar_eq(ex, x, 1, ey, y, 1)
                            && self.scalar_eq(ex, x, -1, ey, y, -1))
                            || (self.scalar_eq(ex, x, 1, ey, y, -1)
                                && self.scalar_eq(ex, x, -1, ey, y, 1));
                    }
                    self.scalar_eq(ex, x, px, ey, y, py)
                } else {
                    false
                }
            }
        }
    }

    /// Unordered comparison of two collections.
    fn coll_eq(&self, ex: &Expr, x: Id, ey: &Expr, y: Id) -> bool {
        let la = self.items(ex, x);
        let lg = self.items(ey, y);
        if la.len() <= 1 && lg.len() <= 1 {
            return false;
        }
        if la.is_empty() || lg.is_empty() || la.len() > 128 || lg.len() > 128 {
            return false;
        }
        la.iter()
            .all(|p| lg.iter().any(|q| self.eq(ex, p.0, p.1, ey, q.0, q.1)))
            && lg
                .iter()
                .all(|q| la.iter().any(|p| self.eq(ex, p.0, p.1, ey, q.0, q.1)))
    }

    fn seq_eq(&self, ex: &Expr, u: &[Id], px: i8, ey: &Expr, v: &[Id], py: i8) -> bool {
        u.len() == v.len()
            && u.iter()
                .zip(v)
                .all(|(&p, &q)| self.eq(ex, p, px, ey, q, py))
    }

    fn is_answer(&self, e: &Expr) -> bool {
        std::ptr::eq(e, self.a)
    }

    /// Scalar expressions: exact or numeric at a constant; sampled with variables.
    fn scalar_eq(&self, ex: &Expr, x: Id, px: i8, ey: &Expr, y: Id, py: i8) -> bool {
        // Orient: `a` is the answer, `g` the gold.
        let (ea, a, pa, eg, g, pg) = if self.is_answer(ex) {
            (ex, x, px, ey, y, py)
        } else {
            (ey, y, py, ex, x, px)
        };
        let (ma, mg) = (ea.vars(a), eg.vars(g));
        let pm_a = if pa < 0 { -1.0 } else { 1.0 };
        let pm_g = if pg < 0 { -1.0 } else { 1.0 };
        // Complex constants: `i` is the imaginary unit when it is the only variable.
        if let Some(i) = self.imag {
            if ma | mg == 1u64 << (i as u32 % 64) {
                let za = ea.eval_complex(a, i, pm_a);
                let zg = eg.eval_complex(g, i, pm_g);
                if let (Some(za), Some(zg)) = (za, zg) {
                    let diff = (za.0 - zg.0).hypot(za.1 - zg.1);
                    let scale = za.0.hypot(za.1).max(zg.0.hypot(zg.1));
                    if !diff.is_finite() {
                        return false;
                    }
                    return match self.ctx.request {
                        Some(Tolerance::Abs(t)) => diff <= t,
                        Some(Tolerance::Rel(t)) => diff <= t * scale,
                        None => diff <= self.ctx.rel_tol * scale + 1e-15,
                    };
                }
            }
        }
        if ma != mg {
            return false;
        }
        if ma == 0 {
            let env_a = Env {
                vars: &[],
                pm: pm_a,
            };
            let env_g = Env {
                vars: &[],
                pm: pm_g,
            };
            let va = ea.eval(a, &env_a);
            let vg = eg.eval(g, &env_g);
            // Integers beyond `i128` compare exactly when both sides are integer
            // expressions (`2^{200}`, `100!`, long literals).
            if !va.is_exact() && !vg.is_exact() && va.to_f64().abs().min(vg.to_f64().abs()) >= 1e38
            {
                if let (Some(x), Some(y)) = (ea.eval_big(a), eg.eval_big(g)) {
                    return x == y;
                }
            }
            if self.values_equal(va, vg, a, g) {
                return true;
            }
            let conv = &self.ctx.conv;
            // Percent: `25` against `25%`, `25%` against `25`.
            if conv.percent_flexible {
                if let Node::Percent(inner) = eg.node(g) {
                    if !matches!(ea.node(a), Node::Percent(_))
                        && self.values_equal(va, eg.eval(*inner, &env_g), a, *inner)
                    {
                        return true;
                    }
                }
                if let Node::Percent(inner) = ea.node(a) {
                    if !matches!(eg.node(g), Node::Percent(_))
                        && self.values_equal(ea.eval(*inner, &env_a), vg, *inner, g)
                    {
                        return true;
                    }
                }
            }
            // Degrees: `\frac{\pi}{6}` against `30^\circ`.
            if conv.radians_for_degrees
                && matches!(eg.node(g), Node::Degree(_))
                && !matches!(ea.node(a), Node::Degree(_))
                && ea.has_pi(a)
            {
                let rad = vg.mul(Number::Real(std::f64::consts::PI / 180.0));
                return self.values_equal(va, rad, a, g);
            }
            return false;
        }
        // Sample points.
        let mut vars = vec![0.0f64; self.nvars];
        let mut counted = 0;
        for t in 0..POINTS {
            for (i, v) in vars.iter_mut().enumerate() {
                *v = sample(t, i);
            }
            let va = ea
                .eval(
                    a,
                    &Env {
                        vars: &vars,
                        pm: pm_a,
                    },
                )
                .to_f64();
            let vg = eg
                .eval(
                    g,
                    &Env {
                        vars: &vars,
                        pm: pm_g,
                    },
                )
                .to_f64();
            if !va.is_finite() || !vg.is_finite() {
                continue;
            }
            let ok = match self.ctx.request {
                Some(t) => t.close(va, vg),
                // Relative; an absolute 1e-12 only against an exact zero (rounding
                // noise of an expression that cancels).
                None => {
                    let floor = if va == 0.0 || vg == 0.0 { 1e-12 } else { 0.0 };
                    (va - vg).abs() <= self.ctx.rel_tol * va.abs().max(vg.abs()) + floor
                }
            };
            if !ok {
                return false;
            }
            counted += 1;
        }
        counted >= 3
    }

    /// Two constant values under the conventions; `a`, `g` are the answer's and the
    /// gold's nodes (for their literals).
    fn values_equal(&self, va: Number, vg: Number, a: Id, g: Id) -> bool {
        let (x, y) = (va.to_f64(), vg.to_f64());
        if !x.is_finite() || !y.is_finite() {
            return x == y && x.is_infinite() && self.a.has_inf(a) && self.g.has_inf(g);
        }
        if let Some(t) = self.ctx.request {
            return va == vg || t.close(x, y);
        }
        if va == vg {
            return true;
        }
        let close = (x - y).abs() <= self.ctx.rel_tol * x.abs().max(y.abs());
        if !close {
            return false;
        }
        let min = self.ctx.conv.min_decimal_digits;
        let sig_a = self.a.min_decimal_sig(a);
        let sig_g = self.g.min_decimal_sig(g);
        match (va, vg) {
            (Number::Rational { .. }, Number::Rational { den, .. }) => {
                // Exact values differ; a long decimal may stand for a repeating one.
                sig_a.is_some_and(|s| s >= min) && sig_g.is_none() && !finite_decimal(den)
            }
            _ => {
                // An exact decimal against an irrational value needs enough digits.
                let a_ok = !va.is_exact() || sig_a.is_none_or(|s| s >= min);
                let g_ok = !vg.is_exact() || sig_g.is_none_or(|s| s >= min);
                a_ok && g_ok
            }
        }
    }

    /// Equations `l1 = r1` and `l2 = r2` equal up to a non-zero factor.
    fn equation_eq(&self, ex: &Expr, x: Id, px: i8, ey: &Expr, y: Id, py: i8) -> bool {
        let (Node::Rel { terms: t1, ops: o1 }, Node::Rel { terms: t2, ops: o2 }) =
            (ex.node(x), ey.node(y))
        else {
            return false;
        };
        if t1.len() != 2 || t2.len() != 2 || o1[0] != RelOp::Eq || o2[0] != RelOp::Eq {
            return false;
        }
        if !t1.iter().all(|&t| ex.is_scalar(t)) || !t2.iter().all(|&t| ey.is_scalar(t)) {
            return false;
        }
        // An unexpanded `±` is a pair of equations, compared as items elsewhere.
        if (px == 0 && (ex.has_pm(x))) || (py == 0 && ey.has_pm(y)) {
            return false;
        }
        let (pm1, pm2) = (
            if px < 0 { -1.0 } else { 1.0 },
            if py < 0 { -1.0 } else { 1.0 },
        );
        let m1 = ex.vars(t1[0]) | ex.vars(t1[1]);
        let m2 = ey.vars(t2[0]) | ey.vars(t2[1]);
        if m1 != m2 || m1 == 0 {
            return false;
        }
        let mut vars = vec![0.0f64; self.nvars];
        let mut ratio: Option<f64> = None;
        let mut counted = 0;
        for t in 0..POINTS {
            for (i, v) in vars.iter_mut().enumerate() {
                *v = sample(t, i);
            }
            let env1 = Env {
                vars: &vars,
                pm: pm1,
            };
            let env2 = Env {
                vars: &vars,
                pm: pm2,
            };
            let f1 = ex.eval(t1[0], &env1).to_f64() - ex.eval(t1[1], &env1).to_f64();
            let f2 = ey.eval(t2[0], &env2).to_f64() - ey.eval(t2[1], &env2).to_f64();
            if !f1.is_finite() || !f2.is_finite() {
                continue;
            }
            let scale = f1.abs().max(f2.abs());
            if scale < 1e-12 {
                counted += 1;
                continue;
            }
            if f2.abs() < 1e-12 || f1.abs() < 1e-12 {
                return false;
            }
            let r = f1 / f2;
            match ratio {
                None => ratio = Some(r),
                Some(r0) => {
                    if (r - r0).abs() > 1e-6 * r.abs().max(r0.abs()) {
                        return false;
                    }
                }
            }
            counted += 1;
        }
        counted >= 3 && ratio.is_some()
    }

    /// The answer as a sorted set of intervals, when it is one. `tuples`: read a pair
    /// `(a, b)` as an open interval.
    fn intervals(&self, e: &Expr, id: Id, tuples: bool) -> Option<Vec<(Bound, Bound)>> {
        let mut out = Vec::new();
        self.collect_intervals(e, id, tuples, &mut out, 0)?;
        if out.is_empty() {
            return None;
        }
        out.sort_by(|p, q| {
            p.0.v
                .to_f64()
                .partial_cmp(&q.0.v.to_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(q.0.closed.cmp(&p.0.closed))
        });
        Some(out)
    }

    fn collect_intervals(
        &self,
        e: &Expr,
        id: Id,
        tuples: bool,
        out: &mut Vec<(Bound, Bound)>,
        depth: usize,
    ) -> Option<()> {
        if depth > 8 || out.len() > 64 {
            return None;
        }
        let env = Env { vars: &[], pm: 1.0 };
        let konst = |n: Id| -> Option<Number> {
            (e.vars(n) == 0 && e.is_scalar(n)).then(|| e.eval(n, &env))
        };
        let interval = |lo: Id, lo_closed: bool, hi: Id, hi_closed: bool| {
            Some((
                Bound {
                    v: konst(lo)?,
                    closed: lo_closed,
                },
                Bound {
                    v: konst(hi)?,
                    closed: hi_closed,
                },
            ))
        };
        let inf = Number::Real(f64::INFINITY);
        let ninf = Number::Real(f64::NEG_INFINITY);
        match e.node(id) {
            Node::Interval {
                lo,
                hi,
                lo_closed,
                hi_closed,
            } => out.push(interval(*lo, *lo_closed, *hi, *hi_closed)?),
            Node::Tuple(v) if tuples && v.len() == 2 => {
                out.push(interval(v[0], false, v[1], false)?)
            }
            Node::Bracket(v) if v.len() == 2 => out.push(interval(v[0], true, v[1], true)?),
            Node::Union(v) | Node::List(v) => {
                for &p in v {
                    self.collect_intervals(e, p, tuples, out, depth + 1)?;
                }
            }
            Node::Set(v) => {
                for &p in v {
                    let k = konst(p)?;
                    out.push((Bound { v: k, closed: true }, Bound { v: k, closed: true }));
                }
            }
            Node::Rel { terms, ops } => {
                if ops.len() == 1 && ops[0] == RelOp::In {
                    return self.collect_intervals(e, terms[1], true, out, depth + 1);
                }
                if let Some((_, v)) = label_value(e, id) {
                    return self.collect_intervals(e, v, tuples, out, depth + 1);
                }
                let lower = |o: RelOp| matches!(o, RelOp::Gt | RelOp::Ge);
                let upper = |o: RelOp| matches!(o, RelOp::Lt | RelOp::Le);
                let closed = |o: RelOp| matches!(o, RelOp::Ge | RelOp::Le);
                match (terms.len(), ops.as_slice()) {
                    (3, [o1, o2]) => {
                        // `c1 < M < c2` or `c1 > M > c2`.
                        let (c1, c2) = (konst(terms[0])?, konst(terms[2])?);
                        if !matches!(e.node(terms[1]), Node::Var(_) | Node::Call(..)) {
                            return None;
                        }
                        if upper(*o1) && upper(*o2) {
                            out.push((
                                Bound {
                                    v: c1,
                                    closed: closed(*o1),
                                },
                                Bound {
                                    v: c2,
                                    closed: closed(*o2),
                                },
                            ));
                        } else if lower(*o1) && lower(*o2) {
                            out.push((
                                Bound {
                                    v: c2,
                                    closed: closed(*o2),
                                },
                                Bound {
                                    v: c1,
                                    closed: closed(*o1),
                                },
                            ));
                        } else {
                            return None;
                        }
                    }
                    (2, [op]) => {
                        let (l, r) = (terms[0], terms[1]);
                        // Solve the linear inequality `l - r op 0` in its one variable.
                        let (bound, var_below) = self.solve_linear(e, l, r)?;
                        // `var_below`: l - r < 0 ⇔ var < bound.
                        let less = match op {
                            RelOp::Lt | RelOp::Le => var_below,
                            RelOp::Gt | RelOp::Ge => !var_below,
                            RelOp::Ne => {
                                out.push((
                                    Bound {
                                        v: ninf,
                                        closed: false,
                                    },
                                    Bound {
                                        v: bound,
                                        closed: false,
                                    },
                                ));
                                out.push((
                                    Bound {
                                        v: bound,
                                        closed: false,
                                    },
                                    Bound {
                                        v: inf,
                                        closed: false,
                                    },
                                ));
                                return Some(());
                            }
                            _ => return None,
                        };
                        let c = closed(*op);
                        if less {
                            out.push((
                                Bound {
                                    v: ninf,
                                    closed: false,
                                },
                                Bound {
                                    v: bound,
                                    closed: c,
                                },
                            ));
                        } else {
                            out.push((
                                Bound {
                                    v: bound,
                                    closed: c,
                                },
                                Bound {
                                    v: inf,
                                    closed: false,
                                },
                            ));
                        }
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// For `l - r` linear in one variable `v`: the root, and whether `l - r < 0`
    /// means `v` below it. Exact when one side is the bare variable.
    fn solve_linear(&self, e: &Expr, l: Id, r: Id) -> Option<(Number, bool)> {
        let env0 = Env { vars: &[], pm: 1.0 };
        let lone = |n: Id| matches!(e.node(n), Node::Var(_) | Node::Call(..));
        if lone(l) && e.vars(r) == 0 {
            return Some((e.eval(r, &env0), true));
        }
        if lone(r) && e.vars(l) == 0 {
            return Some((e.eval(l, &env0), false));
        }
        let mask = e.vars(l) | e.vars(r);
        if mask.count_ones() != 1 {
            return None;
        }
        let var = mask.trailing_zeros() as usize;
        let mut vars = vec![0.0f64; self.nvars.max(var + 1)];
        let mut at = |x: f64| {
            vars[var] = x;
            let env = Env {
                vars: &vars,
                pm: 1.0,
            };
            e.eval(l, &env).to_f64() - e.eval(r, &env).to_f64()
        };
        let (d0, d1, d2) = (at(0.0), at(1.0), at(2.0));
        let slope = d1 - d0;
        if !slope.is_finite()
            || slope.abs() < 1e-12
            || ((d2 - d1) - slope).abs() > 1e-9 * slope.abs().max(1.0)
        {
            return None;
        }
        let root = -d0 / slope;
        // Snap to a short rational when it is one.
        let snapped = (1..=1000i128)
            .find_map(|den| {
                let num = (root * den as f64).round();
                ((root * den as f64 - num).abs() < 1e-9 && num.abs() < 1e15)
                    .then(|| Number::rational(num as i128, den))
            })
            .flatten()
            .unwrap_or(Number::Real(root));
        Some((snapped, slope > 0.0))
    }

    /// Whether the one-variable inequality `rel` holds exactly on the interval set
    /// `set`, checked at the set's endpoints, just beside them, between them and far
    /// out (for inequalities that are not linear, such as `1 \le |z| \le 2`).
    fn same_truth_set(&self, e: &Expr, rel: Id, set: &[(Bound, Bound)]) -> bool {
        let Node::Rel { terms, ops } = e.node(rel) else {
            return false;
        };
        let mask = terms.iter().fold(0u64, |m, &t| m | e.vars(t));
        if mask.count_ones() != 1 || !terms.iter().all(|&t| e.is_scalar(t)) {
            return false;
        }
        let var = mask.trailing_zeros() as usize;
        let mut vars = vec![0.0f64; self.nvars.max(var + 1)];
        let mut holds = |x: f64| -> Option<bool> {
            vars[var] = x;
            let env = Env {
                vars: &vars,
                pm: 1.0,
            };
            let mut prev = e.eval(terms[0], &env).to_f64();
            for (k, op) in ops.iter().enumerate() {
                let next = e.eval(terms[k + 1], &env).to_f64();
                if !prev.is_finite() || !next.is_finite() {
                    return None;
                }
                let eps = 1e-9 * prev.abs().max(next.abs()).max(1.0);
                let ok = match op {
                    RelOp::Lt => prev < next - eps,
                    RelOp::Le => prev <= next + eps,
                    RelOp::Gt => prev > next + eps,
                    RelOp::Ge => prev >= next - eps,
                    RelOp::Ne => (prev - next).abs() > eps,
                    RelOp::Eq | RelOp::Approx => (prev - next).abs() <= eps,
                    RelOp::In => return None,
                };
                if !ok {
                    return Some(false);
                }
                prev = next;
            }
            Some(true)
        };
        let member = |x: f64| {
            set.iter().any(|(lo, hi)| {
                let (l, h) = (lo.v.to_f64(), hi.v.to_f64());
                (x > l || (lo.closed && x == l)) && (x < h || (hi.closed && x == h))
            })
        };
        let mut points: Vec<f64> = vec![-1e6, 1e6, 0.0];
        let ends: Vec<f64> = set
            .iter()
            .flat_map(|(lo, hi)| [lo.v.to_f64(), hi.v.to_f64()])
            .filter(|v| v.is_finite())
            .collect();
        for &p in &ends {
            let d = 1e-6 * p.abs().max(1.0);
            points.extend([p, p - d, p + d]);
        }
        for w in ends.windows(2) {
            points.push((w[0] + w[1]) / 2.0);
        }
        let mut checked = 0;
        for &p in &points {
            match holds(p) {
                Some(h) if h != member(p) => return false,
                Some(_) => checked += 1,
                None => {}
            }
        }
        checked >= 3
    }

    fn interval_sets_eq(&self, a: Vec<(Bound, Bound)>, b: Vec<(Bound, Bound)>) -> bool {
        let bound_eq = |p: Bound, q: Bound| -> bool {
            let (x, y) = (p.v.to_f64(), q.v.to_f64());
            if x.is_infinite() || y.is_infinite() {
                return x == y;
            }
            if !x.is_finite() || !y.is_finite() || p.closed != q.closed {
                return false;
            }
            match (p.v, q.v) {
                (Number::Rational { .. }, Number::Rational { .. }) => p.v == q.v,
                _ => (x - y).abs() <= self.ctx.rel_tol * x.abs().max(y.abs()),
            }
        };
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(p, q)| bound_eq(p.0, q.0) && bound_eq(p.1, q.1))
    }
}

/// Whether the subtree holds a matrix.
fn has_matrix(e: &Expr, id: Id) -> bool {
    let mut found = false;
    e.visit(id, &mut |n| found |= matches!(n, Node::Matrix { .. }));
    found
}

/// A constant matrix expression's value: `(columns, cells row by row)`. Scalars are
/// 1×1 and scale matrices.
fn matrix_value(e: &Expr, id: Id, depth: usize) -> Option<(usize, Vec<Number>)> {
    if depth > 16 {
        return None;
    }
    let env = Env { vars: &[], pm: 1.0 };
    match e.node(id) {
        Node::Matrix { cols, cells } => {
            let cols = *cols as usize;
            let mut out = Vec::with_capacity(cells.len());
            for &c in cells {
                if !e.is_scalar(c) || e.vars(c) != 0 {
                    return None;
                }
                out.push(e.eval(c, &env));
            }
            Some((cols, out))
        }
        Node::Sum(terms) => {
            let mut acc: Option<(usize, Vec<Number>)> = None;
            for &(sign, t) in terms {
                let (c, mut v) = matrix_value(e, t, depth + 1)?;
                match sign {
                    Sign::Plus => {}
                    Sign::Minus => v.iter_mut().for_each(|x| *x = x.neg()),
                    _ => return None,
                }
                acc = Some(match acc {
                    None => (c, v),
                    Some((c0, a)) if c0 == c && a.len() == v.len() => {
                        (c, a.iter().zip(&v).map(|(p, q)| p.add(*q)).collect())
                    }
                    Some(_) => return None,
                });
            }
            acc
        }
        Node::Neg(x) => {
            let (c, v) = matrix_value(e, *x, depth + 1)?;
            Some((c, v.into_iter().map(Number::neg).collect()))
        }
        Node::Prod(fs) => {
            let mut acc: Option<(usize, Vec<Number>, bool)> = None; // (cols, cells, is_scalar)
            for &(div, f) in fs {
                let scalar = !has_matrix(e, f);
                let (c, v) = if scalar {
                    if e.vars(f) != 0 || !e.is_scalar(f) {
                        return None;
                    }
                    (1, vec![e.eval(f, &env)])
                } else {
                    if div {
                        return None;
                    }
                    matrix_value(e, f, depth + 1)?
                };
                let v = if div {
                    vec![Number::int(1).div(v[0])]
                } else {
                    v
                };
                acc = Some(match acc {
                    None => (c, v, scalar),
                    Some((c0, a, a_scalar)) => {
                        if a_scalar || scalar {
                            let (k, m, mc) = if a_scalar {
                                (a[0], v, c)
                            } else {
                                (v[0], a, c0)
                            };
                            (
                                mc,
                                m.into_iter().map(|x| x.mul(k)).collect(),
                                a_scalar && scalar,
                            )
                        } else {
                            // (r×c0)·(c0×c)
                            let rows = a.len() / c0.max(1);
                            if c0 == 0 || v.len() != c0 * c || rows * c > 4096 {
                                return None;
                            }
                            let mut out = Vec::with_capacity(rows * c);
                            for i in 0..rows {
                                for j in 0..c {
                                    let mut s = Number::int(0);
                                    for k in 0..c0 {
                                        s = s.add(a[i * c0 + k].mul(v[k * c + j]));
                                    }
                                    out.push(s);
                                }
                            }
                            (c, out, false)
                        }
                    }
                });
            }
            acc.map(|(c, v, _)| (c, v))
        }
        _ if e.is_scalar(id) && e.vars(id) == 0 => Some((1, vec![e.eval(id, &env)])),
        _ => None,
    }
}

/// Whether a denominator gives a finite decimal (only factors 2 and 5).
fn finite_decimal(mut den: i128) -> bool {
    if den <= 0 {
        return false;
    }
    while den % 2 == 0 {
        den /= 2;
    }
    while den % 5 == 0 {
        den /= 5;
    }
    den == 1
}

/// Whether a node is an interval, union or inequality.
fn is_interval_like(e: &Expr, id: Id) -> bool {
    match e.node(id) {
        Node::Interval { .. } => true,
        Node::Union(v) => v.iter().any(|&p| {
            matches!(
                e.node(p),
                Node::Interval { .. }
                    | Node::Tuple(_)
                    | Node::Bracket(_)
                    | Node::Set(_)
                    | Node::Rel { .. }
            )
        }),
        Node::Rel { ops, .. } => ops
            .iter()
            .all(|o| matches!(o, RelOp::Lt | RelOp::Le | RelOp::Gt | RelOp::Ge | RelOp::Ne)),
        // `x < 1 or x > 2`.
        Node::List(v) => v.iter().all(|&p| {
            matches!(e.node(p), Node::Interval { .. } | Node::Rel { .. }) && is_interval_like(e, p)
        }),
        _ => false,
    }
}

/// Whether a node can be a label (`x`, `f(x)`, `|AB|`, `(p, q)`, `a:b`): it has
/// variables and no numeric literal.
fn is_label(e: &Expr, id: Id) -> bool {
    e.vars(id) != 0 && !e.has_number(id) && !matches!(e.node(id), Node::Rel { .. })
}

/// For an equality chain: `(label, value)`. The value is the last term, or the
/// last before the first `\approx`; the label the first term when it is label-like
/// (or the right side of `value = x`). `None` for a plain two-sided equation.
fn label_value(e: &Expr, id: Id) -> Option<(Option<Id>, Id)> {
    let Node::Rel { terms, ops } = e.node(id) else {
        return None;
    };
    if !ops.iter().all(|o| matches!(o, RelOp::Eq | RelOp::Approx)) {
        return None;
    }
    let value = match ops.iter().position(|&o| o == RelOp::Approx) {
        Some(0) => terms[1],
        Some(k) => terms[k],
        None => *terms.last()?,
    };
    let first = terms[0];
    if first != value && is_label(e, first) {
        return Some((Some(first), value));
    }
    if terms.len() == 2 && matches!(e.node(terms[1]), Node::Var(_)) && !is_label(e, first) {
        return Some((Some(terms[1]), first));
    }
    if terms.len() >= 3 || terms.iter().all(|&t| e.vars(t) == 0) {
        return Some((None, value));
    }
    None
}

#[cfg(test)]
mod tests;
