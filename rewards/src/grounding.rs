//! The `grounding` verifier: bounding boxes matched by IoU (paper Table 1).
//!
//! Boxes are `[x1, y1, x2, y2]` on a `0–1000` grid ([`GroundingVerifier::grid`]).
//!
//! - **Gold**: JSON — one box `[x1,y1,x2,y2]`, a list `[[…],[…]]`, a list of corner
//!   pairs `[[x1,y1],[x2,y2]]` (read as one box), or an object with a `boxes`, `bbox`,
//!   `bbox_2d` or `box` field holding one of those. Text that is not JSON is read like
//!   an answer. A gold holding an invalid box is reported as wrong (a data error).
//! - **Answer**: model text, read leniently but in linear time: every innermost
//!   bracket group `[…]` or `(…)` holding only numbers is taken, a group of four
//!   numbers is a box, and two consecutive groups of two numbers are the corners of a
//!   box (`(12,30),(400,500)`). Surrounding text and JSON keys are ignored
//!   (`{"bbox_2d": [12,30,400,500], "label": "cat"}`). With no bracket groups at all, a
//!   bare run of numbers whose count is a multiple of four is read as boxes
//!   (`12 30 400 500`). Coordinates are not rescaled (a 0–1 box does not match).
//! - **Matching**: a predicted box can match a gold box when both are valid
//!   (`0 ≤ x1 < x2 ≤ grid`, same for `y`, finite) and their IoU is **greater** than
//!   `iou_threshold` (default 0.5). Gold and predicted boxes are matched one-to-one by
//!   maximum bipartite matching (augmenting paths).
//! - **Reward** (anti-hacking choice): `matched / max(#gold, #predicted)` by default,
//!   so answering with many boxes cannot cover the gold boxes by spamming; predicted
//!   boxes that are invalid still count. With [`GroundingVerifier::penalize_extra`] off
//!   it is the paper's `matched / #gold`. A gold with no boxes is matched only by an
//!   answer with none.
//!
//! Sub-scores: `matched` (count), `mean_iou` (mean over gold boxes of the IoU with the
//! matched prediction, 0 when unmatched). More than [`GroundingVerifier::max_boxes`]
//! boxes on either side, or an answer over [`MAX_ANSWER_BYTES`], scores 0.

use crate::{excerpt, Judgement, Tolerance, Verifier};
use serde_json::Value;

/// Longest answer (in bytes) read for boxes; longer answers are wrong.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The `grounding` verifier (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundingVerifier {
    /// A predicted box matches a gold box when their IoU is greater than this
    /// (default 0.5).
    pub iou_threshold: f64,
    /// Divide by `max(#gold, #predicted)` instead of `#gold`, so extra predicted boxes
    /// lower the reward (default `true`).
    pub penalize_extra: bool,
    /// Most boxes read on either side; more scores 0 (default 256).
    pub max_boxes: usize,
    /// Coordinate range: valid boxes lie in `[0, grid]` (default 1000).
    pub grid: f64,
}

impl Default for GroundingVerifier {
    /// IoU > 0.5, extra boxes penalised, at most 256 boxes, a 0–1000 grid.
    fn default() -> Self {
        GroundingVerifier {
            iou_threshold: 0.5,
            penalize_extra: true,
            max_boxes: 256,
            grid: 1000.0,
        }
    }
}

/// An axis-aligned box `[x1, y1, x2, y2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left edge.
    pub x1: f64,
    /// Top edge.
    pub y1: f64,
    /// Right edge.
    pub x2: f64,
    /// Bottom edge.
    pub y2: f64,
}

impl BBox {
    /// A box from `[x1, y1, x2, y2]`.
    pub fn from_slice(v: &[f64]) -> Option<BBox> {
        match *v {
            [x1, y1, x2, y2] => Some(BBox { x1, y1, x2, y2 }),
            _ => None,
        }
    }

    /// Finite, with positive width and height, inside `[0, grid]²`.
    pub fn is_valid(&self, grid: f64) -> bool {
        let in_range = |v: f64| v.is_finite() && (0.0..=grid).contains(&v);
        in_range(self.x1)
            && in_range(self.y1)
            && in_range(self.x2)
            && in_range(self.y2)
            && self.x1 < self.x2
            && self.y1 < self.y2
    }

    /// Area (0 for inverted boxes).
    pub fn area(&self) -> f64 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Whether the point `(x, y)` lies inside or on the edge.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x1 && x <= self.x2 && y >= self.y1 && y <= self.y2
    }

    /// The centre point.
    pub fn center(&self) -> (f64, f64) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }
}

/// Intersection over union of two boxes; 0 when the union is empty or not finite.
pub fn iou(a: &BBox, b: &BBox) -> f64 {
    let w = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let h = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = w * h;
    let union = a.area() + b.area() - inter;
    let v = inter / union;
    if union > 0.0 && v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Maximum bipartite matching by augmenting paths. `adj[g]` lists the right-hand
/// nodes (`< n_right`) that left node `g` may match. Returns, per left node, its
/// match. Recursion depth is at most `adj.len()`, so callers bound that.
pub fn max_matching(adj: &[Vec<usize>], n_right: usize) -> Vec<Option<usize>> {
    fn augment(
        g: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for &p in &adj[g] {
            if p >= seen.len() || seen[p] {
                continue;
            }
            seen[p] = true;
            let free = match owner[p] {
                None => true,
                Some(h) => augment(h, adj, seen, owner),
            };
            if free {
                owner[p] = Some(g);
                return true;
            }
        }
        false
    }
    let mut owner: Vec<Option<usize>> = vec![None; n_right];
    let mut seen = vec![false; n_right];
    for g in 0..adj.len() {
        seen.iter_mut().for_each(|s| *s = false);
        augment(g, adj, &mut seen, &mut owner);
    }
    let mut matched = vec![None; adj.len()];
    for (p, o) in owner.iter().enumerate() {
        if let Some(g) = *o {
            matched[g] = Some(p);
        }
    }
    matched
}

/// Reads boxes leniently from model text (see the module docs). Errors when there are
/// more than `max_boxes`.
pub fn parse_boxes_lenient(text: &str, max_boxes: usize) -> Result<Vec<BBox>, String> {
    let too_many = || format!("more than {max_boxes} boxes");
    let mut boxes = Vec::new();
    let mut pending_point: Option<(f64, f64)> = None;
    let mut open: Option<usize> = None;
    let mut any_group = false;
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' => open = Some(i + 1),
            ']' | ')' => {
                let Some(start) = open.take() else { continue };
                let Some(nums) = numbers_only(&text[start..i]) else {
                    continue;
                };
                any_group = true;
                match nums.len() {
                    4 => {
                        pending_point = None;
                        boxes.extend(BBox::from_slice(&nums));
                    }
                    2 => match pending_point.take() {
                        Some((x1, y1)) => boxes.push(BBox {
                            x1,
                            y1,
                            x2: nums[0],
                            y2: nums[1],
                        }),
                        None => pending_point = Some((nums[0], nums[1])),
                    },
                    _ => pending_point = None,
                }
                if boxes.len() > max_boxes {
                    return Err(too_many());
                }
            }
            _ => {}
        }
    }
    if !any_group {
        let nums = scan_numbers(text, 4 * max_boxes + 4);
        if !nums.is_empty() && nums.len().is_multiple_of(4) {
            boxes.extend(nums.chunks(4).filter_map(BBox::from_slice));
        }
        if boxes.len() > max_boxes {
            return Err(too_many());
        }
    }
    Ok(boxes)
}

/// The numbers of a bracket group's content (separated by commas or whitespace), or
/// `None` when it holds anything else or nothing.
fn numbers_only(content: &str) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for tok in content.split(|c: char| c == ',' || c.is_whitespace()) {
        if tok.is_empty() {
            continue;
        }
        if out.len() >= 4
            || !tok
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        {
            return None;
        }
        out.push(tok.parse::<f64>().ok()?);
    }
    (!out.is_empty()).then_some(out)
}

/// Up to `limit` plain decimal numbers (`-?\d+(\.\d+)?`) in `text`.
fn scan_numbers(text: &str, limit: usize) -> Vec<f64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < limit {
        if b[i].is_ascii_digit() {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Digits and '.' are ASCII, so these are char boundaries.
            if let Some(v) = text.get(start..i).and_then(|s| s.parse::<f64>().ok()) {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A box from a JSON value: four numbers, or two pairs of numbers.
fn json_box(v: &Value) -> Option<BBox> {
    let arr = v.as_array()?;
    if arr.len() == 4 {
        let nums: Option<Vec<f64>> = arr.iter().map(Value::as_f64).collect();
        return BBox::from_slice(&nums?);
    }
    if let [p, q] = arr.as_slice() {
        let (p, q) = (p.as_array()?, q.as_array()?);
        if let ([x1, y1], [x2, y2]) = (p.as_slice(), q.as_slice()) {
            return BBox::from_slice(&[x1.as_f64()?, y1.as_f64()?, x2.as_f64()?, y2.as_f64()?]);
        }
    }
    None
}

/// Gold boxes from JSON (see the module docs); `None` when the JSON has another shape.
fn json_boxes(v: &Value) -> Option<Vec<BBox>> {
    let v = match v {
        Value::Object(m) => ["boxes", "bbox", "bbox_2d", "box"]
            .iter()
            .find_map(|k| m.get(*k))?,
        v => v,
    };
    if let Some(b) = json_box(v) {
        return Some(vec![b]);
    }
    v.as_array()?.iter().map(json_box).collect()
}

/// Parses the gold boxes: JSON first, else the lenient reader.
pub fn parse_gold_boxes(gold: &str, max_boxes: usize) -> Result<Vec<BBox>, String> {
    if let Ok(v) = serde_json::from_str::<Value>(gold) {
        if let Some(b) = json_boxes(&v) {
            return Ok(b);
        }
    }
    let b = parse_boxes_lenient(gold, max_boxes)?;
    if b.is_empty() {
        return Err("no box in gold".to_string());
    }
    Ok(b)
}

impl Verifier for GroundingVerifier {
    fn name(&self) -> &str {
        "grounding"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let gold_boxes = match parse_gold_boxes(gold, self.max_boxes) {
            Ok(g) => g,
            Err(e) => return Judgement::wrong(format!("gold \"{}\": {e}", excerpt(gold))),
        };
        if gold_boxes.len() > self.max_boxes {
            return Judgement::wrong(format!("gold has more than {} boxes", self.max_boxes));
        }
        if let Some(b) = gold_boxes.iter().find(|b| !b.is_valid(self.grid)) {
            return Judgement::wrong(format!("gold has an invalid box {b:?}"));
        }
        if answer.len() > MAX_ANSWER_BYTES {
            return Judgement::wrong(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
        }
        let pred = match parse_boxes_lenient(answer, self.max_boxes) {
            Ok(p) => p,
            Err(e) => return Judgement::wrong(format!("answer: {e}")),
        };
        if gold_boxes.is_empty() {
            return if pred.is_empty() {
                Judgement::right()
                    .with("matched", 0.0)
                    .with("mean_iou", 1.0)
            } else {
                Judgement::wrong(format!("gold has no boxes, answer has {}", pred.len()))
                    .with("matched", 0.0)
                    .with("mean_iou", 0.0)
            };
        }
        if pred.is_empty() {
            return Judgement::wrong(format!("no box in answer \"{}\"", excerpt(answer)))
                .with("matched", 0.0)
                .with("mean_iou", 0.0);
        }
        let valid: Vec<bool> = pred.iter().map(|p| p.is_valid(self.grid)).collect();
        let ious: Vec<Vec<f64>> = gold_boxes
            .iter()
            .map(|g| pred.iter().map(|p| iou(g, p)).collect())
            .collect();
        let adj: Vec<Vec<usize>> = ious
            .iter()
            .map(|row| {
                (0..pred.len())
                    .filter(|&p| valid[p] && row[p] > self.iou_threshold)
                    .collect()
            })
            .collect();
        let matching = max_matching(&adj, pred.len());
        let matched = matching.iter().filter(|m| m.is_some()).count();
        let mean_iou = matching
            .iter()
            .zip(&ious)
            .map(|(m, row)| m.map_or(0.0, |p| row[p]))
            .sum::<f64>()
            / gold_boxes.len() as f64;
        let denom = if self.penalize_extra {
            gold_boxes.len().max(pred.len())
        } else {
            gold_boxes.len()
        };
        let score = matched as f64 / denom as f64;
        let invalid = valid.iter().filter(|v| !**v).count();
        Judgement::partial(
            score,
            Some(format!(
                "{matched} of {} gold boxes matched with IoU > {} by {} predicted boxes{}",
                gold_boxes.len(),
                self.iou_threshold,
                pred.len(),
                if invalid > 0 {
                    format!(" ({invalid} invalid)")
                } else {
                    String::new()
                }
            )),
        )
        .with("matched", matched as f64)
        .with("mean_iou", mean_iou)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(a: &str, g: &str) -> f64 {
        GroundingVerifier::default().judge(a, g, None).score
    }

    #[test]
    fn iou_values() {
        let a = BBox::from_slice(&[0.0, 0.0, 10.0, 10.0]).unwrap_or(BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 0.0,
            y2: 0.0,
        });
        let b = BBox {
            x1: 5.0,
            y1: 0.0,
            x2: 15.0,
            y2: 10.0,
        };
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(iou(&a, &a), 1.0);
        let far = BBox {
            x1: 20.0,
            y1: 20.0,
            x2: 30.0,
            y2: 30.0,
        };
        assert_eq!(iou(&a, &far), 0.0);
        let nan = BBox { x1: f64::NAN, ..a };
        assert_eq!(iou(&nan, &a), 0.0);
        let empty = BBox { x2: 0.0, ..a };
        assert_eq!(iou(&empty, &empty), 0.0);
    }

    #[test]
    fn table() {
        let g1 = "[100, 100, 300, 300]";
        let g2 = "[[100,100,300,300],[500,500,700,700]]";
        let cases: &[(&str, &str, f64)] = &[
            ("[100, 100, 300, 300]", g1, 1.0),
            ("[110,100,300,310]", g1, 1.0),
            ("(100,100),(300,300)", g1, 1.0),
            ("[[100,100],[300,300]]", g1, 1.0),
            ("<box>[100,100,300,300]</box>", g1, 1.0),
            (
                "{\"bbox_2d\": [100,100,300,300], \"label\": \"cat\"}",
                g1,
                1.0,
            ),
            ("The cat is at [100.0, 100.5, 300, 300].", g1, 1.0),
            ("100 100 300 300", g1, 1.0),
            ("[200, 100, 400, 300]", g1, 0.0),  // IoU 1/3
            ("[0.1, 0.1, 0.3, 0.3]", g1, 0.0),  // not rescaled
            ("[300, 300, 100, 100]", g1, 0.0),  // inverted
            ("[100, 100, 300, 3000]", g1, 0.0), // off the grid
            ("[100, 100, 300]", g1, 0.0),
            ("no box here", g1, 0.0),
            ("", g1, 0.0),
            // two gold boxes
            ("[[100,100,300,300],[500,500,700,700]]", g2, 1.0),
            ("[500,500,700,700] and [100,100,300,300]", g2, 1.0),
            ("[100,100,300,300]", g2, 0.5),
            // one prediction cannot match two gold boxes
            ("[100,100,300,300],[100,100,300,300]", g2, 0.5),
            // extra boxes count against
            ("[100,100,300,300],[0,0,10,10]", g1, 0.5),
            (
                "[100,100,300,300],[0,0,10,10],[20,20,30,30],[40,40,50,50]",
                g1,
                0.25,
            ),
            ("[100,100,300,300],[300,300,100,100]", g1, 0.5),
            // gold forms
            ("[100,100,300,300]", "{\"boxes\": [[100,100,300,300]]}", 1.0),
            ("[100,100,300,300]", "{\"bbox\": [100,100,300,300]}", 1.0),
            ("[100,100,300,300]", "[[100,100],[300,300]]", 1.0),
            ("[100,100,300,300]", "box (100, 100), (300, 300)", 1.0),
            ("none", "[]", 1.0),
            ("[100,100,300,300]", "[]", 0.0),
        ];
        for &(a, g, want) in cases {
            let j = GroundingVerifier::default().judge(a, g, None);
            assert!((j.score - want).abs() < 1e-12, "{a:?} vs {g:?}: {j:?}");
            assert_eq!(j.correct, want == 1.0);
        }
    }

    #[test]
    fn matching_is_maximum_not_greedy() {
        // Gold A overlaps predictions P and Q; gold B overlaps only P. Greedy A→P
        // would leave B unmatched; the maximum matching is A→Q, B→P.
        let adj = vec![vec![0, 1], vec![0]];
        let m = max_matching(&adj, 2);
        assert_eq!(m, vec![Some(1), Some(0)]);
        let g = "[[0,0,100,100],[0,0,90,100]]";
        let a = "[0,0,95,100],[0,0,100,100]";
        assert_eq!(score(a, g), 1.0);
    }

    #[test]
    fn options_and_subscores() {
        let v = GroundingVerifier {
            penalize_extra: false,
            ..GroundingVerifier::default()
        };
        let j = v.judge("[100,100,300,300],[0,0,10,10]", "[100,100,300,300]", None);
        assert_eq!(j.score, 1.0);
        let j = GroundingVerifier::default().judge(
            "[100,100,300,300]",
            "[[100,100,300,300],[500,500,700,700]]",
            None,
        );
        assert_eq!(j.subscores["matched"], 1.0);
        assert!((j.subscores["mean_iou"] - 0.5).abs() < 1e-12);
        let strict = GroundingVerifier {
            iou_threshold: 0.95,
            ..GroundingVerifier::default()
        };
        assert_eq!(
            strict
                .judge("[110,100,300,310]", "[100,100,300,300]", None)
                .score,
            0.0
        );
        let j = GroundingVerifier::default().judge("[1,1,2,2]", "[5,5,1,1]", None);
        assert!(j.reason.unwrap_or_default().contains("invalid box"));
    }

    #[test]
    fn adversarial_inputs() {
        let spam = "[100,100,300,300],".repeat(300);
        let j = GroundingVerifier::default().judge(&spam, "[100,100,300,300]", None);
        assert_eq!(j.score, 0.0);
        let nested = "[".repeat(100_000) + "100,100,300,300" + &"]".repeat(100_000);
        assert!(nested.len() > MAX_ANSWER_BYTES);
        assert_eq!(score(&nested, "[100,100,300,300]"), 0.0);
        let nested = "[".repeat(20_000) + "100,100,300,300" + &"]".repeat(20_000);
        assert_eq!(score(&nested, "[100,100,300,300]"), 1.0);
        for junk in [
            "[nan,nan,nan,nan]",
            "[inf,0,1,1]",
            "[1e400,0,1,1]",
            "(((",
            "]]]",
            "\u{0}",
        ] {
            assert_eq!(score(junk, "[100,100,300,300]"), 0.0, "{junk}");
        }
        let digits = "1 ".repeat(30_000);
        assert_eq!(score(&digits, "[100,100,300,300]"), 0.0);
        let gold_nested = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(score("[1,1,2,2]", &gold_nested), 0.0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(a in "\\PC{0,40}", g in "\\PC{0,20}", s in "[0-9a-zA-Z ,.()\\[\\]{}$%\\\\=:'\"-]{0,40}") {
            let v = GroundingVerifier::default();
            for (x, y) in [(&a, &g), (&s, &g), (&a, &s), (&s, &s)] {
                let j = v.judge(x, y, None);
                proptest::prop_assert!((0.0..=1.0).contains(&j.score));
            }
        }
    }
}
