//! Typed gold answers: what a sample's verifier reads ([`Answer::gold`]), what a
//! correct model writes in its box ([`Answer::response`]) and a plausible wrong
//! answer ([`Answer::perturbed`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Side of the normalised coordinate grid of boxes and points (`0..=GRID`).
pub const GRID: u32 = 1000;

/// A GUI action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Click anywhere inside `target` (`[x1, y1, x2, y2]` on the 0–1000 grid).
    Click {
        /// The element's box.
        target: [u32; 4],
    },
    /// Type `text` into the focused field.
    Type {
        /// The text to type.
        text: String,
    },
}

/// A typed gold answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// A number, written exactly as the verifier's gold (`"42"`, `"-3.5"`, `"1/3"`).
    Number {
        /// The number's text.
        value: String,
    },
    /// A text answer (OCR strings, names, multiple-choice letters).
    Text {
        /// The text.
        value: String,
    },
    /// Bounding boxes `[x1, y1, x2, y2]` on the 0–1000 grid.
    Boxes {
        /// The boxes.
        boxes: Vec<[u32; 4]>,
    },
    /// A GUI action.
    Action(Action),
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.replace('"', "'")))
}

fn box_list(boxes: &[[u32; 4]]) -> String {
    let inner: Vec<String> = boxes
        .iter()
        .map(|b| format!("[{},{},{},{}]", b[0], b[1], b[2], b[3]))
        .collect();
    format!("[{}]", inner.join(","))
}

impl Answer {
    /// A number answer.
    pub fn number(value: impl ToString) -> Answer {
        Answer::Number {
            value: value.to_string(),
        }
    }

    /// A text answer.
    pub fn text(value: impl Into<String>) -> Answer {
        Answer::Text {
            value: value.into(),
        }
    }

    /// The gold as the domain's verifier reads it: the number or text itself, a JSON
    /// list of boxes, or a JSON action (`{"action":"click","box":[…]}`).
    pub fn gold(&self) -> String {
        match self {
            Answer::Number { value } | Answer::Text { value } => value.clone(),
            Answer::Boxes { boxes } => box_list(boxes),
            Answer::Action(Action::Click { target: b }) => format!(
                "{{\"action\":\"click\",\"box\":[{},{},{},{}]}}",
                b[0], b[1], b[2], b[3]
            ),
            Answer::Action(Action::Type { text }) => {
                format!("{{\"action\":\"type\",\"text\":{}}}", json_string(text))
            }
        }
    }

    /// What a correct model writes inside its answer box: the value, the box list,
    /// or a call such as `click(x=120, y=340)` at the target's centre.
    pub fn response(&self) -> String {
        match self {
            Answer::Number { value } | Answer::Text { value } => value.clone(),
            Answer::Boxes { boxes } if boxes.len() == 1 => {
                let b = boxes[0];
                format!("[{},{},{},{}]", b[0], b[1], b[2], b[3])
            }
            Answer::Boxes { boxes } => box_list(boxes),
            Answer::Action(Action::Click { target: b }) => {
                format!("click(x={}, y={})", (b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
            }
            Answer::Action(Action::Type { text }) => format!("type(text={})", json_string(text)),
        }
    }

    /// A plausible wrong answer, seeded: a number off by a little, a text with one
    /// character changed, boxes moved off their target, a click outside its element
    /// or a mistyped text. It never equals [`Answer::response`].
    pub fn perturbed(&self, seed: u64) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0fa1);
        match self {
            Answer::Number { value } => perturb_number(value, &mut rng),
            Answer::Text { value } => perturb_text(value, &mut rng),
            Answer::Boxes { boxes } => {
                let moved: Vec<[u32; 4]> = boxes.iter().map(|b| move_box(*b, &mut rng)).collect();
                Answer::Boxes { boxes: moved }.response()
            }
            Answer::Action(Action::Click { target }) => {
                let (x, y) = outside_point(*target, &mut rng);
                format!("click(x={x}, y={y})")
            }
            Answer::Action(Action::Type { text }) => {
                format!("type(text={})", json_string(&perturb_text(text, &mut rng)))
            }
        }
    }
}

fn perturb_number(value: &str, rng: &mut ChaCha8Rng) -> String {
    let off = rng.random_range(1..=9i64) * if rng.random::<bool>() { 1 } else { -1 };
    if let Ok(v) = value.trim().parse::<i64>() {
        return v.saturating_add(off).to_string();
    }
    if let Ok(v) = value.trim().parse::<f64>() {
        if v.is_finite() {
            // At least 10 % away, so tolerant verifiers (charts: 2.5 %) reject it.
            let w = v + (v.abs().max(1.0)) * 0.1 * off as f64;
            return format!("{w}");
        }
    }
    format!("{value}1")
}

fn perturb_text(value: &str, rng: &mut ChaCha8Rng) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let i = rng.random_range(0..chars.len());
    let c = chars[i];
    chars[i] = if c.is_ascii_digit() {
        char::from(b'0' + ((c as u8 - b'0' + 1 + rng.random_range(0..8u8)) % 10))
    } else if c.is_ascii_uppercase() {
        char::from(b'A' + ((c as u8 - b'A' + 1 + rng.random_range(0..24u8)) % 26))
    } else if c.is_ascii_lowercase() {
        char::from(b'a' + ((c as u8 - b'a' + 1 + rng.random_range(0..24u8)) % 26))
    } else if c == 'X' {
        'Y'
    } else {
        'X'
    };
    chars.into_iter().collect()
}

/// The box moved by its own width or height (so IoU ≤ 1/3), or, when it is too big
/// to move, shrunk to a quarter of its width.
fn move_box(b: [u32; 4], rng: &mut ChaCha8Rng) -> [u32; 4] {
    let (w, h) = (b[2].saturating_sub(b[0]), b[3].saturating_sub(b[1]));
    let mut options = Vec::with_capacity(4);
    if b[2] + w <= GRID {
        options.push([b[0] + w, b[1], b[2] + w, b[3]]);
    }
    if b[0] >= w {
        options.push([b[0] - w, b[1], b[2] - w, b[3]]);
    }
    if b[3] + h <= GRID {
        options.push([b[0], b[1] + h, b[2], b[3] + h]);
    }
    if b[1] >= h {
        options.push([b[0], b[1] - h, b[2], b[3] - h]);
    }
    if options.is_empty() {
        return [b[0], b[1], b[0] + (w / 4).max(1), b[3]];
    }
    options[rng.random_range(0..options.len())]
}

/// A point on the grid well outside `b` (at least 20 units from its edges).
fn outside_point(b: [u32; 4], rng: &mut ChaCha8Rng) -> (u32, u32) {
    let cy = (b[1] + b[3]) / 2;
    let cx = (b[0] + b[2]) / 2;
    let mut options = Vec::with_capacity(4);
    if b[0] >= 40 {
        options.push((rng.random_range(0..b[0] - 20), cy));
    }
    if b[2] + 40 <= GRID {
        options.push((rng.random_range(b[2] + 20..=GRID), cy));
    }
    if b[1] >= 40 {
        options.push((cx, rng.random_range(0..b[1] - 20)));
    }
    if b[3] + 40 <= GRID {
        options.push((cx, rng.random_range(b[3] + 20..=GRID)));
    }
    if options.is_empty() {
        // The element covers the screen: no click misses it; aim off the grid.
        return (GRID + 100, GRID + 100);
    }
    options[rng.random_range(0..options.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_and_response_forms() {
        let b = Answer::Boxes {
            boxes: vec![[10, 20, 110, 220]],
        };
        assert_eq!(b.gold(), "[[10,20,110,220]]");
        assert_eq!(b.response(), "[10,20,110,220]");
        let c = Answer::Action(Action::Click {
            target: [100, 200, 300, 260],
        });
        assert_eq!(c.gold(), r#"{"action":"click","box":[100,200,300,260]}"#);
        assert_eq!(c.response(), "click(x=200, y=230)");
        let t = Answer::Action(Action::Type {
            text: "say \"hi\"".into(),
        });
        assert_eq!(t.gold(), r#"{"action":"type","text":"say \"hi\""}"#);
        assert_eq!(Answer::number(42).gold(), "42");
    }

    #[test]
    fn perturbed_answers_differ_from_the_right_one() {
        let answers = [
            Answer::number(7),
            Answer::number("2.5"),
            Answer::text("HELLO"),
            Answer::text(""),
            Answer::Boxes {
                boxes: vec![[0, 0, 1000, 1000], [400, 400, 500, 450]],
            },
            Answer::Action(Action::Click {
                target: [0, 0, 1000, 1000],
            }),
            Answer::Action(Action::Click {
                target: [10, 10, 60, 40],
            }),
            Answer::Action(Action::Type { text: "abc".into() }),
        ];
        for a in &answers {
            for seed in 0..50 {
                assert_ne!(a.perturbed(seed), a.response(), "{a:?} seed {seed}");
            }
        }
    }
}
