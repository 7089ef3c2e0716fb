//! Tokenizer, parser and evaluator for answer expressions.
//!
//! The parser is recursive descent with an explicit depth bound ([`MAX_DEPTH`]); the
//! tree it builds is no deeper than that bound (sums and products are n-ary), so the
//! evaluator's recursion is bounded too. Nodes live in an arena (`Vec<Node>`).

use super::number::{Big, Number};

/// Deepest nesting the parser accepts.
pub(crate) const MAX_DEPTH: usize = 96;
/// Most tokens in one answer.
const MAX_TOKENS: usize = 4096;
/// Most distinct variables in one comparison.
pub(crate) const MAX_VARS: usize = 32;

/// A node index in the arena.
pub(crate) type Id = u32;

/// Elementary functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fun {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Exp,
    Abs,
    Floor,
    Ceil,
}

/// Relation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Eq,
    Approx,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// A term's sign in a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    Plus,
    Minus,
    Pm,
    Mp,
}

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A literal; `sig` is its significant digits when written with a decimal point or
    /// exponent (0 for integers).
    Num {
        v: Number,
        sig: u8,
    },
    /// An integer literal beyond `i128`: its approximate value and its digits (an
    /// index into [`Expr::bigs`]).
    BigInt {
        approx: f64,
        digits: u32,
    },
    Pi,
    E,
    Inf,
    Var(u16),
    Sum(Vec<(Sign, Id)>),
    /// Factors; `true` marks a divisor.
    Prod(Vec<(bool, Id)>),
    Neg(Id),
    Pow(Id, Id),
    Fun(Fun, Id),
    Root(Id, Id),
    Log(Option<Id>, Id),
    Fact(Id),
    Percent(Id),
    Degree(Id),
    /// `f(x)`: a single-letter name applied to an argument (evaluated as a product).
    Call(u16, Id),
    Binom(Id, Id),
    Tuple(Vec<Id>),
    /// `[a, b, …]` with more or fewer than two items.
    Bracket(Vec<Id>),
    Interval {
        lo: Id,
        hi: Id,
        lo_closed: bool,
        hi_closed: bool,
    },
    Set(Vec<Id>),
    List(Vec<Id>),
    Ratio(Vec<Id>),
    Matrix {
        cols: u32,
        cells: Vec<Id>,
    },
    Union(Vec<Id>),
    Rel {
        terms: Vec<Id>,
        ops: Vec<RelOp>,
    },
}

/// A parsed answer: the arena and its root.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    pub nodes: Vec<Node>,
    pub root: Id,
    /// Whether trailing words (unit names) were dropped.
    pub had_words: bool,
    /// Digits of integer literals beyond `i128`.
    pub bigs: Vec<String>,
}

impl Expr {
    pub(crate) fn node(&self, id: Id) -> &Node {
        &self.nodes[id as usize]
    }
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    Num { v: Number, sig: u8, int: bool },
    BigInt(f64, String),
    Var(u16),
    Pi,
    E,
    Inf,
    Fun(Fun),
    Log,
    Frac,
    Sqrt,
    Binom,
    Plus,
    Minus,
    Pm,
    Mp,
    Times,
    Div,
    Slash,
    Caret,
    Bang,
    Percent,
    Degree,
    LP,
    RP,
    LB,
    RB,
    LC,
    RC,
    LSet,
    RSet,
    Pipe,
    Comma,
    Semi,
    Colon,
    Amp,
    RowSep,
    Rel(RelOp),
    Cup,
    Begin,
    End,
    Underscore,
    Word,
    Unknown,
    Lg,
    LFloor,
    RFloor,
    LCeil,
    RCeil,
    Empty,
}

#[derive(Debug, Clone)]
struct Tok {
    t: T,
    /// Whitespace came right before this token.
    sp: bool,
}

/// Interned variable names shared by the two sides of a comparison.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<String>,
}

impl Names {
    fn intern(&mut self, s: &str) -> Option<u16> {
        if let Some(i) = self.names.iter().position(|n| n == s) {
            return u16::try_from(i).ok();
        }
        if self.names.len() >= MAX_VARS {
            return None;
        }
        self.names.push(s.to_string());
        u16::try_from(self.names.len() - 1).ok()
    }

    /// How many names are interned.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The index of a name, when interned.
    pub(crate) fn find(&self, s: &str) -> Option<u16> {
        self.names
            .iter()
            .position(|n| n == s)
            .and_then(|i| u16::try_from(i).ok())
    }
}

fn word_token(w: &str) -> Option<T> {
    Some(match w {
        "sin" => T::Fun(Fun::Sin),
        "cos" => T::Fun(Fun::Cos),
        "tan" | "tg" => T::Fun(Fun::Tan),
        "cot" | "ctg" => T::Fun(Fun::Cot),
        "sec" => T::Fun(Fun::Sec),
        "csc" | "cosec" => T::Fun(Fun::Csc),
        "arcsin" | "asin" => T::Fun(Fun::Asin),
        "arccos" | "acos" => T::Fun(Fun::Acos),
        "arctan" | "atan" | "arctg" => T::Fun(Fun::Atan),
        "sinh" => T::Fun(Fun::Sinh),
        "cosh" => T::Fun(Fun::Cosh),
        "tanh" => T::Fun(Fun::Tanh),
        "ln" => T::Fun(Fun::Ln),
        "exp" => T::Fun(Fun::Exp),
        "abs" => T::Fun(Fun::Abs),
        "floor" => T::Fun(Fun::Floor),
        "ceil" => T::Fun(Fun::Ceil),
        "log" => T::Log,
        "lg" => T::Lg,
        "sqrt" => T::Sqrt,
        "frac" => T::Frac,
        "binom" | "dbinom" | "tbinom" => T::Binom,
        "pi" => T::Pi,
        "infty" | "infinity" | "inf" | "infin" => T::Inf,
        "pm" => T::Pm,
        "mp" => T::Mp,
        "times" | "cdot" | "ast" => T::Times,
        "div" => T::Div,
        "le" => T::Rel(RelOp::Le),
        "ge" => T::Rel(RelOp::Ge),
        "ne" => T::Rel(RelOp::Ne),
        "approx" | "simeq" | "sim" | "cong" | "equiv" => T::Rel(RelOp::Approx),
        "in" => T::Rel(RelOp::In),
        "cup" => T::Cup,
        "or" | "lor" => T::Comma,
        "and" | "land" | "wedge" => T::Comma,
        "percent" | "pct" | "percentage" => T::Percent,
        "lfloor" => T::LFloor,
        "rfloor" => T::RFloor,
        "lceil" => T::LCeil,
        "rceil" => T::RCeil,
        "vert" | "lvert" | "rvert" | "mid" => T::Pipe,
        "emptyset" | "varnothing" => T::Empty,
        _ => return None,
    })
}

/// Whether `w` (a run of ASCII letters) is a word to keep as text rather than
/// letters to multiply.
fn is_word(w: &str) -> bool {
    w.len() >= 3
}

/// Tokenizes normalised text; `None` when it is too long.
fn tokenize(s: &str, names: &mut Names) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let n = b.len();
    let mut out: Vec<Tok> = Vec::with_capacity(n / 2 + 1);
    let mut i = 0;
    let mut sp = false;
    // Digits to read singly (`\frac12`, `\sqrt2`).
    let mut single_digits = 0u8;
    while i < n {
        if out.len() > MAX_TOKENS {
            return None;
        }
        let c = b[i];
        if c == b' ' {
            sp = true;
            i += 1;
            continue;
        }
        let push = |t: T, out: &mut Vec<Tok>| {
            out.push(Tok { t, sp });
        };
        match c {
            b'0'..=b'9' | b'.' if c != b'.' || (i + 1 < n && b[i + 1].is_ascii_digit()) => {
                if single_digits > 0 && c.is_ascii_digit() {
                    single_digits -= 1;
                    push(
                        T::Num {
                            v: Number::int(i128::from(c - b'0')),
                            sig: 0,
                            int: true,
                        },
                        &mut out,
                    );
                    i += 1;
                } else {
                    single_digits = 0;
                    let (t, len) = lex_number(&s[i..]);
                    push(t, &mut out);
                    i += len;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                single_digits = 0;
                let len = b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
                let w = &s[i..i + len];
                i += len;
                if let Some(t) = word_token(w) {
                    push(t, &mut out);
                } else if is_word(w) {
                    push(T::Word, &mut out);
                } else {
                    for (k, ch) in w.char_indices() {
                        let mut name = String::new();
                        name.push(ch);
                        if k + 1 == w.len() {
                            i += subscript(&s[i..], &mut name);
                        }
                        let t = if name == "e" {
                            T::E
                        } else {
                            T::Var(names.intern(&name)?)
                        };
                        out.push(Tok {
                            t,
                            sp: sp && k == 0,
                        });
                    }
                }
            }
            b'\\' => {
                let len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
                if len == 0 {
                    let t = match b.get(i + 1) {
                        Some(b'{') => T::LSet,
                        Some(b'}') => T::RSet,
                        Some(b'\\') => T::RowSep,
                        Some(b'|') => T::Pipe,
                        Some(b'%') => T::Percent,
                        _ => T::Unknown,
                    };
                    push(t, &mut out);
                    i += 1 + s[i + 1..].chars().next().map_or(0, char::len_utf8);
                    sp = false;
                    continue;
                }
                let w = &s[i + 1..i + 1 + len];
                i += 1 + len;
                let t = match w {
                    "frac" => {
                        single_digits = 2;
                        T::Frac
                    }
                    "sqrt" => {
                        single_digits = 1;
                        T::Sqrt
                    }
                    "begin" | "end" => {
                        // Skip `{name}` and an `array` column spec.
                        if let Some(rest) = s[i..].strip_prefix('{') {
                            let close = rest.find('}')?;
                            let env = &rest[..close];
                            i += close + 2;
                            if w == "begin" && env == "array" && s[i..].starts_with('{') {
                                let close = s[i..].find('}')?;
                                i += close + 1;
                            }
                        }
                        if w == "begin" {
                            T::Begin
                        } else {
                            T::End
                        }
                    }
                    "overline" | "dot" | "bar" => T::Unknown,
                    _ => match word_token(w) {
                        Some(t) => t,
                        None => {
                            let mut name = format!("\\{w}");
                            i += subscript(&s[i..], &mut name);
                            T::Var(names.intern(&name)?)
                        }
                    },
                };
                push(t, &mut out);
            }
            _ => {
                single_digits = 0;
                let ch = s[i..].chars().next()?;
                i += ch.len_utf8();
                let next = b.get(i).copied();
                let t = match ch {
                    '+' => T::Plus,
                    '-' => T::Minus,
                    '*' => T::Times,
                    '/' => T::Slash,
                    '^' => T::Caret,
                    '!' if next == Some(b'=') => {
                        i += 1;
                        T::Rel(RelOp::Ne)
                    }
                    '!' => T::Bang,
                    '%' => T::Percent,
                    '°' => T::Degree,
                    '(' => T::LP,
                    ')' => T::RP,
                    '[' => T::LB,
                    ']' => T::RB,
                    '{' => T::LC,
                    '}' => T::RC,
                    '|' => T::Pipe,
                    ',' => T::Comma,
                    ';' => T::Semi,
                    ':' => T::Colon,
                    '&' => T::Amp,
                    '_' => T::Underscore,
                    '\'' => T::Unknown,
                    '=' => {
                        if next == Some(b'=') {
                            i += 1;
                        }
                        T::Rel(RelOp::Eq)
                    }
                    '<' | '>' => {
                        let eq = next == Some(b'=');
                        if eq {
                            i += 1;
                        }
                        T::Rel(match (ch, eq) {
                            ('<', false) => RelOp::Lt,
                            ('<', true) => RelOp::Le,
                            (_, false) => RelOp::Gt,
                            _ => RelOp::Ge,
                        })
                    }
                    _ => T::Unknown,
                };
                push(t, &mut out);
            }
        }
        sp = false;
    }
    Some(out)
}

/// Reads a subscript (`_1`, `_{ab}`) after a name into `name`; returns bytes read.
fn subscript(s: &str, name: &mut String) -> usize {
    let Some(rest) = s.strip_prefix('_') else {
        return 0;
    };
    if let Some(inner) = rest.strip_prefix('{') {
        if let Some(close) = inner.find('}') {
            let sub = &inner[..close];
            if !sub.contains('{') && sub.len() <= 32 {
                name.push('_');
                name.extend(sub.chars().filter(|c| !c.is_whitespace()));
                return close + 3;
            }
        }
        return 0;
    }
    match rest.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            name.push('_');
            name.push(c);
            1 + c.len_utf8()
        }
        _ => 0,
    }
}

/// Lexes a numeric literal: digits, `.digits`, a repeating part (`\overline{3}`,
/// `\dot{3}`, `(3)` after a point), an exponent (`e-5`). Returns the token and its
/// length in bytes.
fn lex_number(s: &str) -> (T, usize) {
    let b = s.as_bytes();
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = int_len;
    let mut frac = "";
    let mut point = false;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        point = true;
        let f = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        frac = &s[i + 1..i + 1 + f];
        i += 1 + f;
    } else if b.get(i) == Some(&b'.')
        && (s[i + 1..].starts_with("\\overline")
            || s[i + 1..].starts_with("\\dot")
            || s[i + 1..].starts_with('('))
    {
        point = true;
        i += 1;
    }
    let int_part = &s[..int_len];
    // A repeating block.
    if point {
        let rest = &s[i..];
        let rep = ["\\overline{", "\\dot{", "\\bar{", "("]
            .iter()
            .find_map(|p| rest.strip_prefix(p).map(|t| (p.len(), t)));
        if let Some((plen, t)) = rep {
            let close = if plen == 1 { ')' } else { '}' };
            let d = t.bytes().take_while(u8::is_ascii_digit).count();
            if d > 0 && t[d..].starts_with(close) {
                let rep_digits = &t[..d];
                if let Some(v) = repeating(int_part, frac, rep_digits) {
                    return (
                        T::Num {
                            v,
                            sig: 0,
                            int: false,
                        },
                        i + plen + d + 1,
                    );
                }
            }
        }
    }
    let mantissa_sig = sig_digits(int_part, frac);
    let mut v = exact_decimal(int_part, frac);
    let mut sig = if point { mantissa_sig } else { 0 };
    // Exponent: `e5`, `E-3`.
    if let Some(&e) = b.get(i) {
        if e == b'e' || e == b'E' {
            let rest = &s[i + 1..];
            let (neg, digits_at) = match rest.as_bytes().first() {
                Some(b'-') => (true, 1),
                Some(b'+') => (false, 1),
                _ => (false, 0),
            };
            let d = rest.as_bytes()[digits_at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let after = rest.as_bytes().get(digits_at + d);
            if d > 0 && d <= 6 && !after.is_some_and(u8::is_ascii_alphabetic) {
                let exp: i128 = rest[digits_at..digits_at + d].parse().unwrap_or(0);
                let exp = if neg { -exp } else { exp };
                v = v.mul(Number::int(10).pow(Number::int(exp)));
                sig = mantissa_sig.max(1);
                i += 1 + digits_at + d;
            }
        }
    }
    if !point && sig == 0 && !v.is_exact() {
        let digits = int_part.trim_start_matches('0');
        if digits.len() <= 4096 {
            return (T::BigInt(v.to_f64(), digits.to_string()), i);
        }
    }
    (
        T::Num {
            v,
            sig,
            int: !point && sig == 0,
        },
        i,
    )
}

fn sig_digits(int_part: &str, frac: &str) -> u8 {
    let all = int_part.bytes().chain(frac.bytes());
    let count = all.skip_while(|&c| c == b'0').count();
    u8::try_from(count).unwrap_or(u8::MAX)
}

/// `int.frac(rep)` with `rep` repeating, exactly.
fn repeating(int_part: &str, frac: &str, rep: &str) -> Option<Number> {
    let base = exact_decimal(int_part, frac);
    let r = exact_decimal(rep, "");
    let k = i128::try_from(frac.len()).ok()?;
    let l = i128::try_from(rep.len()).ok()?;
    let ten = Number::int(10);
    let den = ten
        .pow(Number::int(k))
        .mul(ten.pow(Number::int(l)).sub(Number::int(1)));
    let v = base.add(r.div(den));
    v.is_exact().then_some(v)
}

/// `int_part.frac_part` exactly, or as `f64` when it overflows.
fn exact_decimal(int_part: &str, frac_part: &str) -> Number {
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = int_part.trim_start_matches('0');
    let mut mag: Option<i128> = Some(0);
    for b in int_part.bytes().chain(frac_part.bytes()) {
        mag = mag.and_then(|m| m.checked_mul(10)?.checked_add(i128::from(b - b'0')));
    }
    let den = u32::try_from(frac_part.len())
        .ok()
        .and_then(|l| 10i128.checked_pow(l));
    if let (Some(m), Some(d)) = (mag, den) {
        if let Some(v) = Number::rational(m, d) {
            return v;
        }
    }
    let text = format!(
        "{}.{}",
        if int_part.is_empty() { "0" } else { int_part },
        if frac_part.is_empty() { "0" } else { frac_part }
    );
    Number::Real(text.parse::<f64>().unwrap_or(f64::NAN))
}

/// Parses normalised text into an expression; `None` when it is not one.
pub(crate) fn parse(s: &str, names: &mut Names) -> Option<Expr> {
    let toks = tokenize(s, names)?;
    let mut p = Parser {
        toks,
        pos: 0,
        nodes: Vec::new(),
        depth: 0,
        abs_depth: 0,
        had_words: false,
        bigs: Vec::new(),
    };
    let root = p.list(Stop::Top)?;
    // Trailing words are unit names or prose: dropped, but remembered.
    while let Some(t) = p.peek() {
        let after_caret = p.pos > 0 && p.toks[p.pos - 1].t == T::Caret;
        match t {
            T::Word | T::Var(_) | T::Caret | T::Slash | T::Percent
                if p.had_words || *t == T::Word =>
            {
                p.had_words = true;
                p.pos += 1;
            }
            T::Num { .. } if p.had_words && after_caret => p.pos += 1,
            _ => return None,
        }
    }
    Some(Expr {
        nodes: p.nodes,
        root,
        had_words: p.had_words,
        bigs: p.bigs,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Top,
    Paren,
    Brace,
    Set,
    Cell,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    nodes: Vec<Node>,
    depth: usize,
    abs_depth: usize,
    had_words: bool,
    bigs: Vec<String>,
}

impl Parser {
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.pos).map(|t| &t.t)
    }

    fn peek_at(&self, k: usize) -> Option<&T> {
        self.toks.get(self.pos + k).map(|t| &t.t)
    }

    fn eat(&mut self, t: &T) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn add(&mut self, n: Node) -> Option<Id> {
        let id = Id::try_from(self.nodes.len()).ok()?;
        self.nodes.push(n);
        Some(id)
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Comma/semicolon separated items; one item is returned as itself.
    fn list(&mut self, stop: Stop) -> Option<Id> {
        self.enter()?;
        let mut items = Vec::new();
        // With both `;` and `,` at this level, `;` separates groups (`p=5,q=2;p=7,q=2`).
        let mut groups: Vec<Vec<Id>> = Vec::new();
        let mut saw_comma = false;
        loop {
            match self.peek() {
                Some(T::Comma) => {
                    saw_comma = true;
                    self.pos += 1;
                    continue;
                }
                Some(T::Semi) => {
                    groups.push(std::mem::take(&mut items));
                    self.pos += 1;
                    continue;
                }
                None => break,
                Some(T::RP | T::RB | T::RC | T::RSet | T::End | T::RowSep | T::Amp) => break,
                Some(T::Word) if stop == Stop::Top => break,
                _ => {}
            }
            let start = self.pos;
            items.push(self.union()?);
            if self.pos == start {
                return None;
            }
            if !matches!(self.peek(), Some(T::Comma | T::Semi)) {
                break;
            }
        }
        self.depth -= 1;
        if !groups.is_empty() {
            groups.push(items);
            groups.retain(|g| !g.is_empty());
            if !saw_comma {
                items = groups.concat();
            } else {
                items = Vec::with_capacity(groups.len());
                for g in groups {
                    let id = if g.len() == 1 {
                        g[0]
                    } else {
                        self.add(Node::Tuple(g))?
                    };
                    items.push(id);
                }
            }
        }
        match items.len() {
            0 => None,
            1 => items.pop(),
            _ => self.add(Node::List(items)),
        }
    }

    fn union(&mut self) -> Option<Id> {
        self.separated(&T::Cup, Self::relation, Node::Union)
    }

    /// `next (sep next)*`: the single operand alone, or `node` of all of them.
    fn separated(
        &mut self,
        sep: &T,
        next: fn(&mut Self) -> Option<Id>,
        node: fn(Vec<Id>) -> Node,
    ) -> Option<Id> {
        let first = next(self)?;
        if self.peek() != Some(sep) {
            return Some(first);
        }
        let mut parts = vec![first];
        while self.eat(sep) {
            parts.push(next(self)?);
        }
        self.add(node(parts))
    }

    fn relation(&mut self) -> Option<Id> {
        let first = self.ratio()?;
        let mut terms = vec![first];
        let mut ops = Vec::new();
        while let Some(T::Rel(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            if terms.len() >= 64 {
                return None;
            }
            ops.push(op);
            terms.push(self.ratio()?);
        }
        if ops.is_empty() {
            return Some(first);
        }
        self.add(Node::Rel { terms, ops })
    }

    fn ratio(&mut self) -> Option<Id> {
        self.separated(&T::Colon, Self::sum, Node::Ratio)
    }

    fn sum(&mut self) -> Option<Id> {
        let mut terms: Vec<(Sign, Id)> = Vec::new();
        let mut sign = Sign::Plus;
        // Leading signs.
        loop {
            match self.peek() {
                Some(T::Plus) => {}
                Some(T::Minus) => sign = flip(sign),
                Some(T::Pm) => sign = Sign::Pm,
                Some(T::Mp) => sign = Sign::Mp,
                _ => break,
            }
            self.pos += 1;
        }
        loop {
            let t = self.term()?;
            terms.push((sign, t));
            sign = match self.peek() {
                Some(T::Plus) => Sign::Plus,
                Some(T::Minus) => Sign::Minus,
                Some(T::Pm) => Sign::Pm,
                Some(T::Mp) => Sign::Mp,
                _ => break,
            };
            self.pos += 1;
            while let Some(T::Plus | T::Minus) = self.peek() {
                if self.peek() == Some(&T::Minus) {
                    sign = flip(sign);
                }
                self.pos += 1;
            }
        }
        if terms.len() == 1 && terms[0].0 == Sign::Plus {
            return Some(terms[0].1);
        }
        if terms.len() == 1 && terms[0].0 == Sign::Minus {
            return self.add(Node::Neg(terms[0].1));
        }
        self.add(Node::Sum(terms))
    }

    fn term(&mut self) -> Option<Id> {
        let first = self.power()?;
        let mut factors = vec![(false, first)];
        loop {
            match self.peek() {
                Some(T::Times) => {
                    self.pos += 1;
                    factors.push((false, self.signed_power()?));
                }
                Some(T::Slash | T::Div) => {
                    self.pos += 1;
                    factors.push((true, self.signed_power()?));
                }
                Some(t) if starts_atom(t) => {
                    // Two plain numbers side by side (`1 2`) are not a product.
                    let prev_num = matches!(
                        self.toks.get(self.pos.wrapping_sub(1)).map(|t| &t.t),
                        Some(T::Num { .. } | T::BigInt(..))
                    );
                    if prev_num && matches!(t, T::Num { .. } | T::BigInt(..)) {
                        // A mixed number `2 1/2`.
                        if let Some(m) = self.mixed_number(&factors) {
                            factors = vec![(false, m)];
                            continue;
                        }
                        return None;
                    }
                    if self.abs_depth > 0 && *t == T::Pipe {
                        break;
                    }
                    // A mixed number `2\frac{1}{2}`.
                    if *t == T::Frac && factors.len() == 1 && prev_num {
                        if let Some(m) = self.mixed_frac(factors[0].1) {
                            factors[0].1 = m;
                            continue;
                        }
                    }
                    factors.push((false, self.power()?));
                }
                _ => break,
            }
        }
        if factors.len() == 1 {
            return Some(factors[0].1);
        }
        self.add(Node::Prod(factors))
    }

    fn int_value(&self, id: Id) -> Option<i128> {
        match self.nodes.get(id as usize) {
            Some(Node::Num { v, sig: 0 }) => v.as_int(),
            _ => None,
        }
    }

    /// `W \frac{a}{b}` with integer literals: `W + a/b`.
    fn mixed_frac(&mut self, whole: Id) -> Option<Id> {
        let w = self.int_value(whole)?;
        let save = (self.pos, self.nodes.len());
        let f = self.power()?;
        let ok = matches!(self.nodes.get(f as usize), Some(Node::Prod(v)) if v.len() == 2 && v.iter().all(|&(_, x)| self.int_value(x).is_some_and(|k| k >= 0)));
        if !ok || w < 0 {
            self.pos = save.0;
            self.nodes.truncate(save.1);
            return None;
        }
        self.add(Node::Sum(vec![(Sign::Plus, whole), (Sign::Plus, f)]))
    }

    /// `W a/b` (a space, then an integer fraction): `W + a/b`.
    fn mixed_number(&mut self, factors: &[(bool, Id)]) -> Option<Id> {
        if factors.len() != 1 || !self.toks.get(self.pos).is_some_and(|t| t.sp) {
            return None;
        }
        let whole = factors[0].1;
        self.int_value(whole).filter(|&w| w >= 0)?;
        let (a, b) = match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (
                Some(T::Num {
                    v: a, int: true, ..
                }),
                Some(T::Slash),
                Some(T::Num {
                    v: b, int: true, ..
                }),
            ) => (*a, *b),
            _ => return None,
        };
        self.pos += 3;
        let a = self.add(Node::Num { v: a, sig: 0 })?;
        let b = self.add(Node::Num { v: b, sig: 0 })?;
        let f = self.add(Node::Prod(vec![(false, a), (true, b)]))?;
        self.add(Node::Sum(vec![(Sign::Plus, whole), (Sign::Plus, f)]))
    }

    fn signed_power(&mut self) -> Option<Id> {
        self.enter()?;
        let r = match self.peek() {
            Some(T::Minus) => {
                self.pos += 1;
                let x = self.signed_power()?;
                self.add(Node::Neg(x))
            }
            Some(T::Plus) => {
                self.pos += 1;
                self.signed_power()
            }
            _ => self.power(),
        };
        self.depth -= 1;
        r
    }

    fn power(&mut self) -> Option<Id> {
        self.enter()?;
        let mut base = self.postfix()?;
        if self.eat(&T::Caret) {
            let exp = self.exponent()?;
            base = self.add(Node::Pow(base, exp))?;
            base = self.postfix_ops(base)?;
        }
        self.depth -= 1;
        Some(base)
    }

    /// The exponent after `^`: a group, a signed power or one token.
    fn exponent(&mut self) -> Option<Id> {
        match self.peek() {
            Some(T::Minus | T::Plus) => self.signed_power(),
            Some(T::Degree) => None,
            _ => self.power(),
        }
    }

    fn postfix(&mut self) -> Option<Id> {
        let a = self.atom()?;
        self.postfix_ops(a)
    }

    fn postfix_ops(&mut self, mut a: Id) -> Option<Id> {
        loop {
            match self.peek() {
                Some(T::Bang) => {
                    self.pos += 1;
                    a = self.add(Node::Fact(a))?;
                }
                Some(T::Percent) => {
                    self.pos += 1;
                    a = self.add(Node::Percent(a))?;
                }
                Some(T::Degree) => {
                    self.pos += 1;
                    a = self.add(Node::Degree(a))?;
                }
                Some(T::Caret) if self.peek_at(1) == Some(&T::Degree) => {
                    self.pos += 2;
                    a = self.add(Node::Degree(a))?;
                }
                _ => return Some(a),
            }
        }
    }

    /// A braced group `{…}` or a single atom: an argument of `\frac`, `\sqrt`.
    fn arg(&mut self) -> Option<Id> {
        if self.eat(&T::LC) {
            let x = self.list(Stop::Brace)?;
            self.eat(&T::RC).then_some(x)
        } else {
            self.atom()
        }
    }

    fn atom(&mut self) -> Option<Id> {
        self.enter()?;
        let tok = self.toks.get(self.pos)?.t.clone();
        self.pos += 1;
        let id = match tok {
            T::Num { v, sig, .. } => self.add(Node::Num { v, sig })?,
            T::BigInt(approx, digits) => {
                let index = u32::try_from(self.bigs.len()).ok()?;
                self.bigs.push(digits);
                self.add(Node::BigInt {
                    approx,
                    digits: index,
                })?
            }
            T::Pi => self.add(Node::Pi)?,
            T::E => self.add(Node::E)?,
            T::Inf => self.add(Node::Inf)?,
            T::Var(v) => {
                // `f(x)`: a function call when a single letter is followed by `(`
                // with no space.
                if self.peek() == Some(&T::LP) && !self.toks[self.pos].sp && self.abs_depth == 0 {
                    let save = self.pos;
                    self.pos += 1;
                    if let Some(inner) = self.list(Stop::Paren) {
                        if self.eat(&T::RP) {
                            let r = self.add(Node::Call(v, inner))?;
                            self.depth -= 1;
                            return Some(r);
                        }
                    }
                    self.pos = save;
                }
                self.add(Node::Var(v))?
            }
            T::Minus => {
                let x = self.power()?;
                self.add(Node::Neg(x))?
            }
            T::Plus => self.power()?,
            T::Pm => {
                let x = self.power()?;
                self.add(Node::Sum(vec![(Sign::Pm, x)]))?
            }
            T::Frac => {
                let a = self.arg()?;
                let b = self.arg()?;
                self.add(Node::Prod(vec![(false, a), (true, b)]))?
            }
            T::Binom => {
                let a = self.arg()?;
                let b = self.arg()?;
                self.add(Node::Binom(a, b))?
            }
            T::Sqrt => {
                let index = if self.eat(&T::LB) {
                    let k = self.sum()?;
                    if !self.eat(&T::RB) {
                        return None;
                    }
                    Some(k)
                } else {
                    None
                };
                let x = self.arg()?;
                let k = match index {
                    Some(k) => k,
                    None => self.add(Node::Num {
                        v: Number::int(2),
                        sig: 0,
                    })?,
                };
                self.add(Node::Root(k, x))?
            }
            T::Fun(f) => {
                // `\sin^2 x` squares the result; `\sin^{-1}` is the inverse.
                let mut power = None;
                if self.eat(&T::Caret) {
                    power = Some(self.exponent()?);
                }
                let x = self.fun_arg()?;
                let mut f = f;
                if let Some(p) = power {
                    if let Some(Node::Num { v, .. }) = self.nodes.get(p as usize) {
                        if *v == Number::int(-1) {
                            f = match f {
                                Fun::Sin => Fun::Asin,
                                Fun::Cos => Fun::Acos,
                                Fun::Tan => Fun::Atan,
                                other => other,
                            };
                            power = None;
                        }
                    }
                    if let Some(Node::Neg(inner)) = self.nodes.get(p as usize) {
                        if self.int_value(*inner) == Some(1) {
                            f = match f {
                                Fun::Sin => Fun::Asin,
                                Fun::Cos => Fun::Acos,
                                Fun::Tan => Fun::Atan,
                                other => other,
                            };
                            power = None;
                        }
                    }
                }
                let v = self.add(Node::Fun(f, x))?;
                match power {
                    Some(p) => self.add(Node::Pow(v, p))?,
                    None => v,
                }
            }
            T::Log => {
                let base = if self.eat(&T::Underscore) {
                    Some(self.arg()?)
                } else {
                    None
                };
                let x = self.fun_arg()?;
                self.add(Node::Log(base, x))?
            }
            T::Lg => {
                let ten = self.add(Node::Num {
                    v: Number::int(10),
                    sig: 0,
                })?;
                let x = self.fun_arg()?;
                self.add(Node::Log(Some(ten), x))?
            }
            T::Empty => self.add(Node::Set(Vec::new()))?,
            T::LFloor | T::LCeil => {
                let (close, f) = if tok == T::LFloor {
                    (T::RFloor, Fun::Floor)
                } else {
                    (T::RCeil, Fun::Ceil)
                };
                let x = self.sum()?;
                if !self.eat(&close) {
                    return None;
                }
                self.add(Node::Fun(f, x))?
            }
            T::LC => {
                let x = self.list(Stop::Brace)?;
                if !self.eat(&T::RC) {
                    return None;
                }
                x
            }
            T::LSet => {
                let x = if self.peek() == Some(&T::RSet) {
                    None
                } else {
                    Some(self.list(Stop::Set)?)
                };
                if !self.eat(&T::RSet) {
                    return None;
                }
                let items = match x {
                    None => Vec::new(),
                    Some(x) => match self.nodes.get(x as usize) {
                        Some(Node::List(v)) => v.clone(),
                        _ => vec![x],
                    },
                };
                self.add(Node::Set(items))?
            }
            T::LP | T::LB => {
                let open_paren = tok == T::LP;
                let saved_abs = self.abs_depth;
                self.abs_depth = 0;
                let x = self.list(Stop::Paren)?;
                self.abs_depth = saved_abs;
                let close_paren = match self.peek() {
                    Some(T::RP) => true,
                    Some(T::RB) => false,
                    _ => return None,
                };
                self.pos += 1;
                let items = match self.nodes.get(x as usize) {
                    Some(Node::List(v)) => Some(v.clone()),
                    _ => None,
                };
                match items {
                    None if open_paren == close_paren => x,
                    None => return None,
                    Some(v) if v.len() == 2 && (!open_paren || !close_paren) => {
                        self.add(Node::Interval {
                            lo: v[0],
                            hi: v[1],
                            lo_closed: !open_paren,
                            hi_closed: !close_paren,
                        })?
                    }
                    Some(v) if open_paren && close_paren => self.add(Node::Tuple(v))?,
                    Some(v) if !open_paren && !close_paren => self.add(Node::Bracket(v))?,
                    Some(_) => return None,
                }
            }
            T::Pipe => {
                if self.abs_depth > 8 {
                    return None;
                }
                self.abs_depth += 1;
                let x = self.sum()?;
                self.abs_depth -= 1;
                if !self.eat(&T::Pipe) {
                    return None;
                }
                self.add(Node::Fun(Fun::Abs, x))?
            }
            T::Begin => self.matrix()?,
            _ => return None,
        };
        self.depth -= 1;
        Some(id)
    }

    /// The argument of a function: `(…)`, `{…}` or an implicit product of atoms.
    fn fun_arg(&mut self) -> Option<Id> {
        match self.peek() {
            Some(T::LP | T::LC | T::Pipe) => self.power(),
            _ => {
                let first = self.power()?;
                let mut factors = vec![(false, first)];
                while let Some(t) = self.peek() {
                    if !starts_atom(t) || matches!(t, T::Fun(_) | T::Log | T::LP | T::Pipe) {
                        break;
                    }
                    factors.push((false, self.power()?));
                }
                if factors.len() == 1 {
                    Some(first)
                } else {
                    self.add(Node::Prod(factors))
                }
            }
        }
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (after `\begin{…}`).
    fn matrix(&mut self) -> Option<Id> {
        let mut cells = Vec::new();
        let mut cols = 0usize;
        let mut row_len = 0usize;
        loop {
            match self.peek() {
                Some(T::End) => {
                    self.pos += 1;
                    break;
                }
                Some(T::Amp) => {
                    self.pos += 1;
                }
                Some(T::RowSep) => {
                    self.pos += 1;
                    if row_len > 0 {
                        if cols == 0 {
                            cols = row_len;
                        } else if cols != row_len {
                            return None;
                        }
                    }
                    row_len = 0;
                }
                None => return None,
                _ => {
                    cells.push(self.list(Stop::Cell)?);
                    row_len += 1;
                }
            }
        }
        if row_len > 0 {
            if cols == 0 {
                cols = row_len;
            } else if cols != row_len {
                return None;
            }
        }
        if cells.is_empty() {
            return None;
        }
        self.add(Node::Matrix {
            cols: u32::try_from(cols).ok()?,
            cells,
        })
    }
}

fn flip(s: Sign) -> Sign {
    match s {
        Sign::Plus => Sign::Minus,
        Sign::Minus => Sign::Plus,
        Sign::Pm => Sign::Mp,
        Sign::Mp => Sign::Pm,
    }
}

fn starts_atom(t: &T) -> bool {
    matches!(
        t,
        T::Num { .. }
            | T::BigInt(..)
            | T::Var(_)
            | T::Pi
            | T::E
            | T::Inf
            | T::Fun(_)
            | T::Log
            | T::Frac
            | T::Sqrt
            | T::Binom
            | T::LP
            | T::LC
            | T::Pipe
            | T::Begin
            | T::Lg
            | T::LFloor
            | T::LCeil
            | T::Empty
    )
}

/// Values for evaluation: variables by index, and the sign taken by `±`.
pub(crate) struct Env<'a> {
    pub vars: &'a [f64],
    pub pm: f64,
}

impl Expr {
    /// Evaluates a scalar node; structures give NaN.
    pub(crate) fn eval(&self, id: Id, env: &Env) -> Number {
        let nan = Number::Real(f64::NAN);
        match self.node(id) {
            Node::Num { v, .. } => *v,
            Node::BigInt { approx, .. } => Number::Real(*approx),
            Node::Pi => Number::Real(std::f64::consts::PI),
            Node::E => Number::Real(std::f64::consts::E),
            Node::Inf => Number::Real(f64::INFINITY),
            Node::Var(i) => Number::Real(env.vars.get(*i as usize).copied().unwrap_or(f64::NAN)),
            Node::Sum(terms) => {
                let mut acc = Number::int(0);
                for &(s, t) in terms {
                    let v = self.eval(t, env);
                    let plus = match s {
                        Sign::Plus => true,
                        Sign::Minus => false,
                        Sign::Pm => env.pm > 0.0,
                        Sign::Mp => env.pm < 0.0,
                    };
                    acc = if plus { acc.add(v) } else { acc.sub(v) };
                }
                acc
            }
            Node::Prod(fs) => {
                let mut acc = Number::int(1);
                for &(div, f) in fs {
                    let v = self.eval(f, env);
                    acc = if div { acc.div(v) } else { acc.mul(v) };
                }
                acc
            }
            Node::Neg(x) => self.eval(*x, env).neg(),
            Node::Pow(b, e) => {
                let e = self.eval(*e, env);
                let b = self.eval(*b, env);
                b.pow(e)
            }
            Node::Root(k, x) => {
                let k = self.eval(*k, env);
                let x = self.eval(*x, env);
                match k.as_int() {
                    Some(k) if k >= 1 => x.root(k).unwrap_or(nan),
                    _ => x.pow(Number::int(1).div(k)),
                }
            }
            Node::Fun(f, x) => {
                let mut v = self.eval(*x, env);
                // `\sin 30^\circ`: trigonometric functions of degrees.
                if let (
                    Node::Degree(_),
                    Fun::Sin | Fun::Cos | Fun::Tan | Fun::Cot | Fun::Sec | Fun::Csc,
                ) = (self.node(*x), f)
                {
                    v = v.mul(Number::Real(std::f64::consts::PI / 180.0));
                }
                fun(*f, v)
            }
            Node::Log(base, x) => {
                let v = self.eval(*x, env);
                match base {
                    None => {
                        if v == Number::int(1) {
                            Number::int(0)
                        } else {
                            Number::Real(v.to_f64().ln())
                        }
                    }
                    Some(b) => {
                        let b = self.eval(*b, env);
                        let r = v.to_f64().ln() / b.to_f64().ln();
                        let k = r.round();
                        if (r - k).abs() < 1e-9
                            && k.abs() < 128.0
                            && b.pow(Number::int(k as i128)) == v
                        {
                            Number::int(k as i128)
                        } else {
                            Number::Real(r)
                        }
                    }
                }
            }
            Node::Fact(x) => self.eval(*x, env).factorial(),
            Node::Percent(x) => self.eval(*x, env).div(Number::int(100)),
            Node::Degree(x) => self.eval(*x, env),
            Node::Call(f, x) => {
                let f = Number::Real(env.vars.get(*f as usize).copied().unwrap_or(f64::NAN));
                f.mul(self.eval(*x, env))
            }
            Node::Binom(n, k) => {
                let (n, k) = (self.eval(*n, env), self.eval(*k, env));
                match (n.as_int(), k.as_int()) {
                    (Some(n), Some(k)) if k >= 0 && n >= 0 && k <= n && k <= 200 => {
                        let mut acc = Number::int(1);
                        for j in 0..k {
                            acc = acc.mul(Number::int(n - j)).div(Number::int(j + 1));
                        }
                        acc
                    }
                    _ => nan,
                }
            }
            _ => nan,
        }
    }

    /// The exact integer value of an integer expression (literals, `+ - ×`, powers
    /// with small non-negative exponents, `!`), within [`super::number::MAX_BIG_BITS`];
    /// `None` for anything else.
    pub(crate) fn eval_big(&self, id: Id) -> Option<Big> {
        Some(match self.node(id) {
            Node::Num { v, sig: 0 } => Big::from_i128(v.as_int()?),
            Node::BigInt { digits, .. } => Big::from_digits(self.bigs.get(*digits as usize)?)?,
            Node::Sum(terms) => {
                let mut acc = Big::from_i128(0);
                for &(sign, t) in terms {
                    let v = self.eval_big(t)?;
                    acc = match sign {
                        Sign::Plus => acc.add(&v)?,
                        Sign::Minus => acc.add(&v.neg())?,
                        _ => return None,
                    };
                }
                acc
            }
            Node::Prod(fs) => {
                let mut acc = Big::from_i128(1);
                for &(div, f) in fs {
                    if div {
                        return None;
                    }
                    acc = acc.mul(&self.eval_big(f)?)?;
                }
                acc
            }
            Node::Neg(x) => self.eval_big(*x)?.neg(),
            Node::Pow(b, e) => {
                let e = self.eval(*e, &Env { vars: &[], pm: 1.0 }).as_int()?;
                self.eval_big(*b)?.pow(u64::try_from(e).ok()?)?
            }
            Node::Fact(x) => {
                let n = self.eval(*x, &Env { vars: &[], pm: 1.0 }).as_int()?;
                if !(0..=2000).contains(&n) {
                    return None;
                }
                let mut acc = Big::from_i128(1);
                for k in 2..=n {
                    acc = acc.mul(&Big::from_i128(k))?;
                }
                acc
            }
            _ => return None,
        })
    }

    /// Evaluates a constant expression over the complex numbers, with variable `imag`
    /// as the imaginary unit. `None` for what it does not cover.
    pub(crate) fn eval_complex(&self, id: Id, imag: u16, pm: f64) -> Option<C> {
        Some(match self.node(id) {
            Node::Num { v, .. } => C(v.to_f64(), 0.0),
            Node::BigInt { approx, .. } => C(*approx, 0.0),
            Node::Pi => C(std::f64::consts::PI, 0.0),
            Node::E => C(std::f64::consts::E, 0.0),
            Node::Var(v) if *v == imag => C(0.0, 1.0),
            Node::Sum(terms) => {
                let mut acc = C(0.0, 0.0);
                for &(sign, t) in terms {
                    let v = self.eval_complex(t, imag, pm)?;
                    let plus = match sign {
                        Sign::Plus => true,
                        Sign::Minus => false,
                        Sign::Pm => pm > 0.0,
                        Sign::Mp => pm < 0.0,
                    };
                    acc = if plus { acc.add(v) } else { acc.add(v.neg()) };
                }
                acc
            }
            Node::Prod(fs) => {
                let mut acc = C(1.0, 0.0);
                for &(div, f) in fs {
                    let v = self.eval_complex(f, imag, pm)?;
                    acc = if div { acc.div(v) } else { acc.mul(v) };
                }
                acc
            }
            Node::Neg(x) => self.eval_complex(*x, imag, pm)?.neg(),
            Node::Pow(b, e) => {
                let b = self.eval_complex(*b, imag, pm)?;
                let e = self.eval_complex(*e, imag, pm)?;
                b.pow(e)
            }
            Node::Root(k, x) => {
                let k = self.eval_complex(*k, imag, pm)?;
                let x = self.eval_complex(*x, imag, pm)?;
                if x.1 == 0.0 && (x.0 >= 0.0 || k.0 != 2.0) {
                    let r = self.eval(id, &Env { vars: &[], pm });
                    C(r.to_f64(), 0.0)
                } else {
                    x.pow(C(1.0, 0.0).div(k))
                }
            }
            Node::Fun(Fun::Abs, x) => {
                let v = self.eval_complex(*x, imag, pm)?;
                C(v.0.hypot(v.1), 0.0)
            }
            Node::Fun(Fun::Exp, x) => self.eval_complex(*x, imag, pm)?.exp(),
            _ => {
                if self.vars(id) != 0 {
                    return None;
                }
                C(self.eval(id, &Env { vars: &[], pm }).to_f64(), 0.0)
            }
        })
    }

    /// Whether the subtree mentions `\infty`.
    pub(crate) fn has_inf(&self, id: Id) -> bool {
        self.any(id, &|n| matches!(n, Node::Inf))
    }

    /// Whether the subtree mentions `±`/`∓`.
    pub(crate) fn has_pm(&self, id: Id) -> bool {
        self.any(id, &|n| matches!(n, Node::Sum(t) if t.iter().any(|(s, _)| matches!(s, Sign::Pm | Sign::Mp))))
    }

    /// Whether the subtree mentions π.
    pub(crate) fn has_pi(&self, id: Id) -> bool {
        self.any(id, &|n| matches!(n, Node::Pi))
    }

    /// Whether the subtree holds a numeric literal.
    pub(crate) fn has_number(&self, id: Id) -> bool {
        self.any(id, &|n| matches!(n, Node::Num { .. } | Node::BigInt { .. }))
    }

    /// The fewest significant digits of a decimal literal in the subtree (`None`: no
    /// decimal literal).
    pub(crate) fn min_decimal_sig(&self, id: Id) -> Option<u8> {
        let mut best: Option<u8> = None;
        self.visit(id, &mut |n| {
            if let Node::Num { sig, .. } = n {
                if *sig > 0 {
                    best = Some(best.map_or(*sig, |b| b.min(*sig)));
                }
            }
        });
        best
    }

    /// Bitmask of the variables used in the subtree.
    pub(crate) fn vars(&self, id: Id) -> u64 {
        let mut mask = 0u64;
        self.visit(id, &mut |n| match n {
            Node::Var(i) | Node::Call(i, _) => mask |= 1u64 << (*i as u32 % 64),
            _ => {}
        });
        mask
    }

    fn any(&self, id: Id, pred: &dyn Fn(&Node) -> bool) -> bool {
        let mut found = false;
        self.visit(id, &mut |n| found |= pred(n));
        found
    }

    /// Visits every node of the subtree (iteratively).
    pub(crate) fn visit(&self, id: Id, f: &mut dyn FnMut(&Node)) {
        let mut stack = vec![id];
        while let Some(i) = stack.pop() {
            let Some(n) = self.nodes.get(i as usize) else {
                continue;
            };
            f(n);
            match n {
                Node::Num { .. }
                | Node::BigInt { .. }
                | Node::Pi
                | Node::E
                | Node::Inf
                | Node::Var(_) => {}
                Node::Sum(t) => stack.extend(t.iter().map(|x| x.1)),
                Node::Prod(t) => stack.extend(t.iter().map(|x| x.1)),
                Node::Neg(x)
                | Node::Fun(_, x)
                | Node::Fact(x)
                | Node::Percent(x)
                | Node::Degree(x)
                | Node::Call(_, x) => stack.push(*x),
                Node::Log(b, x) => {
                    stack.push(*x);
                    stack.extend(b.iter());
                }
                Node::Pow(a, b) | Node::Root(a, b) | Node::Binom(a, b) => stack.extend([*a, *b]),
                Node::Interval { lo, hi, .. } => stack.extend([*lo, *hi]),
                Node::Tuple(v)
                | Node::Bracket(v)
                | Node::Set(v)
                | Node::List(v)
                | Node::Ratio(v)
                | Node::Union(v) => stack.extend(v.iter()),
                Node::Matrix { cells, .. } => stack.extend(cells.iter()),
                Node::Rel { terms, .. } => stack.extend(terms.iter()),
            }
        }
    }

    /// Whether the node is a scalar expression: no structure (tuple, interval, set,
    /// list, ratio, matrix, union, relation) anywhere in its subtree, itself included.
    pub(crate) fn is_scalar(&self, id: Id) -> bool {
        !self.any(id, &|n| {
            matches!(
                n,
                Node::Tuple(_)
                    | Node::Bracket(_)
                    | Node::Interval { .. }
                    | Node::Set(_)
                    | Node::List(_)
                    | Node::Ratio(_)
                    | Node::Matrix { .. }
                    | Node::Union(_)
                    | Node::Rel { .. }
            )
        })
    }
}

fn fun(f: Fun, v: Number) -> Number {
    let zero = Number::int(0);
    if v == zero {
        match f {
            Fun::Sin
            | Fun::Tan
            | Fun::Asin
            | Fun::Atan
            | Fun::Sinh
            | Fun::Tanh
            | Fun::Abs
            | Fun::Floor
            | Fun::Ceil => return zero,
            Fun::Cos | Fun::Sec | Fun::Cosh | Fun::Exp => return Number::int(1),
            _ => {}
        }
    }
    if let Number::Rational { num, den } = v {
        match f {
            Fun::Abs => {
                return Number::Rational {
                    num: num.checked_abs().unwrap_or(i128::MAX),
                    den,
                }
            }
            Fun::Floor => return Number::int(num.div_euclid(den)),
            Fun::Ceil => return Number::int(-((-num).div_euclid(den))),
            Fun::Ln if num == den => return zero,
            _ => {}
        }
    }
    let x = v.to_f64();
    Number::Real(match f {
        Fun::Sin => x.sin(),
        Fun::Cos => x.cos(),
        Fun::Tan => x.tan(),
        Fun::Cot => 1.0 / x.tan(),
        Fun::Sec => 1.0 / x.cos(),
        Fun::Csc => 1.0 / x.sin(),
        Fun::Asin => x.asin(),
        Fun::Acos => x.acos(),
        Fun::Atan => x.atan(),
        Fun::Sinh => x.sinh(),
        Fun::Cosh => x.cosh(),
        Fun::Tanh => x.tanh(),
        Fun::Ln => x.ln(),
        Fun::Exp => x.exp(),
        Fun::Abs => x.abs(),
        Fun::Floor => x.floor(),
        Fun::Ceil => x.ceil(),
    })
}

/// A complex number `(re, im)` in `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct C(pub f64, pub f64);

impl C {
    fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
    fn neg(self) -> C {
        C(-self.0, -self.1)
    }
    fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
    fn div(self, o: C) -> C {
        let d = o.0 * o.0 + o.1 * o.1;
        C(
            (self.0 * o.0 + self.1 * o.1) / d,
            (self.1 * o.0 - self.0 * o.1) / d,
        )
    }
    fn exp(self) -> C {
        let m = self.0.exp();
        C(m * self.1.cos(), m * self.1.sin())
    }
    /// Principal power; integer exponents by repeated squaring.
    fn pow(self, e: C) -> C {
        if e.1 == 0.0 && e.0.fract() == 0.0 && e.0.abs() <= 1024.0 {
            let mut n = e.0.abs() as u32;
            let mut acc = C(1.0, 0.0);
            let mut b = self;
            while n > 0 {
                if n & 1 == 1 {
                    acc = acc.mul(b);
                }
                b = b.mul(b);
                n >>= 1;
            }
            return if e.0 < 0.0 { C(1.0, 0.0).div(acc) } else { acc };
        }
        if self.0 == 0.0 && self.1 == 0.0 {
            return C(0.0, 0.0);
        }
        // `+ 0.0` turns a negative zero into zero: the branch cut is taken from above.
        let ln = C(self.0.hypot(self.1).ln(), (self.1 + 0.0).atan2(self.0));
        e.mul(ln).exp()
    }
}
