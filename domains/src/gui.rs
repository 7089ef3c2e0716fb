//! GUI: act on a small rendered screen.
//!
//! **Task.** One image shows an application window: a title bar, labelled buttons
//! and labelled text fields (a label, then an input box); one field may have the
//! keyboard focus (a thick blue border and a caret). The instruction is one of:
//! - "Click the Save button." → click inside that button;
//! - "Click the text field labelled City." → click inside the box right of that label;
//! - "Type 'hello' into the focused field." → type the given text;
//! - "Type the code shown on the screen into the focused field." → type the code
//!   printed on the screen after the word `Code`.
//!
//! **Image.** 64 × 96, 96 × 64, 80 × 64, 64 × 80, 96 × 80 or 96 × 96 pixels, drawn
//! per seed. Elements flow left to right in rows and never overlap; labels on one
//! screen are distinct.
//!
//! **Answer.** [`Answer::Action`]: [`Action::Click`] with the element's box on the
//! 0–1000 grid (`x · 1000 / width`, rounded outwards), or [`Action::Type`] with the
//! text. The gold is `{"action":"click","box":[…]}` / `{"action":"type","text":"…"}`
//! and a correct response is `click(x=…, y=…)` at the box centre or
//! `type(text="…")`. Scored by the `gui` verifier: a click scores 1 inside the box
//! (edges included) and 0 outside; typed text scores its LCS ratio, 1 only when equal.
//!
//! **Difficulty knobs** (monotone in `difficulty ∈ [0, 1]`):
//! - *elements*: `3 + ⌊5d⌉ ..= 4 + ⌊6d⌉` buttons and fields (fewer only when the
//!   screen is full);
//! - *similar labels*: with probability `d`, the other buttons' labels come from
//!   the target's look-alike group (`Save`, `Sale`, `Safe`, `Same`);
//! - *smaller buttons*: from 0.5, buttons lose their border and their padding shrinks
//!   from 3 × 2 pixels to 2 × 1 (11 pixels high to 9);
//! - *tasks*: button clicks and typing given text below 0.25; clicking a field by
//!   its label from 0.25; typing a code read off the screen from 0.5. The newest
//!   task unlocked is drawn half the time.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::answer::GRID;
use crate::image::{Canvas, Image, Rgb, WHITE};
use crate::knobs::{pick, unlocked_kind};
use crate::{font, glm_template, Action, Answer, Domain, Sample};

/// Act on a rendered screen (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gui;

const SIZES: [(i64, i64); 6] = [(64, 96), (96, 64), (80, 64), (64, 80), (96, 80), (96, 96)];
/// Groups of look-alike button labels.
const GROUPS: [&[&str]; 12] = [
    &["Save", "Sale", "Safe", "Same"],
    &["Send", "Sent", "Seed", "Sand"],
    &["Open", "Oven", "Omen", "Opus"],
    &["Edit", "Exit", "Emit", "Exam"],
    &["Next", "Text", "Nest", "Neat"],
    &["Load", "Lead", "Road", "Loan"],
    &["Stop", "Step", "Shop", "Stow"],
    &["Find", "Fine", "Fire", "Fold"],
    &["Undo", "Redo", "Unto"],
    &["Play", "Pay", "Plan", "Clay"],
    &["Back", "Pack", "Bank", "Bark"],
    &["Copy", "Cope", "Cozy", "Cosy"],
];
const FIELD_LABELS: [&str; 10] = [
    "Name", "Mail", "City", "Town", "User", "Pass", "Age", "Note", "Date", "Zip",
];
const WORDS: [&str; 12] = [
    "hello", "world", "river", "apple", "paris", "tiger", "mango", "green", "quiet", "42", "blue7",
    "orbit",
];
const TITLES: [&str; 6] = ["Settings", "Login", "Editor", "Files", "Inbox", "Player"];
const CODE_CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

const BG: Rgb = [236, 237, 241];
const BUTTON: Rgb = [212, 218, 230];
/// Fill of the borderless buttons used from difficulty 0.5.
const FLAT_BUTTON: Rgb = [186, 198, 224];
const BORDER: Rgb = [110, 114, 126];
const FOCUS: Rgb = [30, 110, 235];
const TEXT: Rgb = [20, 20, 20];
const CODE_INK: Rgb = [150, 30, 30];

fn clamp_difficulty(d: f32) -> f32 {
    if d.is_finite() {
        d.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// What an element is.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Button,
    /// A text field; the label is drawn left of the input box.
    Field,
    /// The printed code (`Code K7P2`), not clickable.
    Note,
}

/// One laid-out element. `rect` is the clickable box (`x, y, w, h` in pixels): the
/// button, or the field's input box; `label_at` is where its text starts.
#[derive(Debug, Clone)]
struct Elem {
    kind: Kind,
    label: String,
    rect: (i64, i64, i64, i64),
    label_at: (i64, i64),
    focused: bool,
}

/// What the instruction asks.
#[derive(Debug, Clone, PartialEq)]
enum Task {
    ClickButton(String),
    ClickField(String),
    TypeGiven(String),
    TypeCode(String),
}

struct Scene {
    image: Image,
    elems: Vec<Elem>,
    task: Task,
    width: i64,
    height: i64,
}

/// An element before layout: kind, label, outer width and height, and for fields
/// the input box width.
#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    label: String,
    box_w: i64,
    focused: bool,
    required: bool,
}

/// Pixels between a field's label and its box.
const LABEL_GAP: i64 = 2;
const GAP: i64 = 3;
const EDGE: i64 = 2;

fn item_width(it: &Item, pad_x: i64) -> i64 {
    let tw = Canvas::text_width(&it.label, 1);
    match it.kind {
        Kind::Button => tw + 2 * pad_x,
        Kind::Field => tw + LABEL_GAP + it.box_w,
        Kind::Note => tw,
    }
}

/// Flows `items` into rows inside the window; returns the placed elements, or
/// `None` when a required item did not fit.
fn flow(items: &[Item], w: i64, h: i64, top: i64, pad_x: i64, elem_h: i64) -> Option<Vec<Elem>> {
    let mut out = Vec::new();
    let (mut x, mut y) = (EDGE, top);
    for it in items {
        let iw = item_width(it, pad_x);
        if iw > w - 2 * EDGE {
            if it.required {
                return None;
            }
            continue;
        }
        if x + iw > w - EDGE {
            x = EDGE;
            y += elem_h + GAP;
        }
        if y + elem_h > h - EDGE {
            if it.required {
                return None;
            }
            continue;
        }
        let tw = Canvas::text_width(&it.label, 1);
        let text_y = y + (elem_h - font::HEIGHT as i64) / 2;
        let elem = match it.kind {
            Kind::Button => Elem {
                kind: Kind::Button,
                label: it.label.clone(),
                rect: (x, y, iw, elem_h),
                label_at: (x + pad_x, text_y),
                focused: false,
            },
            Kind::Field => Elem {
                kind: Kind::Field,
                label: it.label.clone(),
                rect: (x + tw + LABEL_GAP, y, it.box_w, elem_h),
                label_at: (x, text_y),
                focused: it.focused,
            },
            Kind::Note => Elem {
                kind: Kind::Note,
                label: it.label.clone(),
                rect: (x, text_y, tw, font::HEIGHT as i64),
                label_at: (x, text_y),
                focused: false,
            },
        };
        out.push(elem);
        x += iw + GAP;
    }
    Some(out)
}

fn render(seed: u64, difficulty: f32) -> Scene {
    let d = clamp_difficulty(difficulty);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = SIZES
        .get(rng.random_range(0..SIZES.len()))
        .copied()
        .unwrap_or((96, 64));

    // The task.
    let kind = unlocked_kind(&mut rng, d, &[0.25, 0.5]);

    let n_lo = 3 + (d * 5.0).round() as usize;
    let n_hi = 4 + (d * 6.0).round() as usize;
    let n = rng.random_range(n_lo..=n_hi.max(n_lo));
    let similar = rng.random_bool(f64::from(d));
    // From 0.5, smaller borderless buttons.
    let flat = d >= 0.5;
    let (pad_x, pad_y) = if flat { (2, 1) } else { (3, 2) };
    let elem_h = font::HEIGHT as i64 + 2 * pad_y;

    // Button and field labels, all distinct.
    let mut groups: Vec<&[&str]> = GROUPS.to_vec();
    groups.shuffle(&mut rng);
    let target_group = groups.first().copied().unwrap_or(&["Save"]);
    let mut button_pool: Vec<String> = Vec::new();
    if similar {
        let mut g: Vec<&str> = target_group.to_vec();
        g.shuffle(&mut rng);
        button_pool.extend(g.iter().map(|s| s.to_string()));
    } else {
        button_pool.push(pick(&mut rng, target_group, "Save").to_string());
    }
    // Then one label from each other group (distinct by construction).
    for g in groups.iter().skip(1) {
        button_pool.push(pick(&mut rng, g, "OK").to_string());
    }
    let mut field_pool: Vec<&str> = FIELD_LABELS.to_vec();
    field_pool.shuffle(&mut rng);

    // How many of the n elements are fields: at least one for field and type tasks.
    let needs_field = kind >= 1;
    let n_fields = if needs_field {
        1 + rng.random_range(0..=(n / 3))
    } else {
        rng.random_range(0..=(n / 3))
    }
    .min(n.saturating_sub(1))
    .max(usize::from(needs_field));
    let n_buttons = n - n_fields;

    let mut items: Vec<Item> = Vec::new();
    for (i, label) in button_pool.iter().take(n_buttons.max(1)).enumerate() {
        items.push(Item {
            kind: Kind::Button,
            label: label.clone(),
            box_w: 0,
            focused: false,
            required: i == 0 && kind == 0,
        });
    }
    let focus_index = if n_fields > 0 {
        rng.random_range(0..n_fields)
    } else {
        0
    };
    let field_target = if n_fields > 0 {
        rng.random_range(0..n_fields)
    } else {
        0
    };
    let typing = kind == 1 || kind == 3;
    for (i, label) in field_pool.iter().take(n_fields).enumerate() {
        items.push(Item {
            kind: Kind::Field,
            label: label.to_string(),
            box_w: rng.random_range(18..=34),
            // Type tasks always have a focused field; click tasks sometimes.
            focused: i == focus_index && (typing || rng.random_bool(0.5)),
            required: (kind == 2 && i == field_target) || (typing && i == focus_index),
        });
    }
    let code: String = (0..rng.random_range(4..=5))
        .map(|_| {
            CODE_CHARS
                .get(rng.random_range(0..CODE_CHARS.len()))
                .map(|&b| char::from(b))
                .unwrap_or('A')
        })
        .collect();
    if kind == 3 {
        items.push(Item {
            kind: Kind::Note,
            label: format!("Code {code}"),
            box_w: 0,
            focused: false,
            required: true,
        });
    }
    let task = match kind {
        0 => Task::ClickButton(button_pool.first().cloned().unwrap_or_default()),
        1 => Task::TypeGiven(pick(&mut rng, &WORDS, "hello").to_string()),
        2 => Task::ClickField(
            field_pool
                .get(field_target)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
        _ => Task::TypeCode(code),
    };
    items.shuffle(&mut rng);

    // Title bar, then the rows.
    let title_h = font::HEIGHT as i64 + 3;
    let top = title_h + 3;
    let mut elems = flow(&items, w, h, top, pad_x, elem_h);
    if elems.is_none() {
        // Required items first; then only them.
        items.sort_by_key(|it| !it.required);
        elems = flow(&items, w, h, top, pad_x, elem_h);
    }
    let elems = elems.unwrap_or_else(|| {
        let req: Vec<Item> = items.iter().filter(|it| it.required).cloned().collect();
        flow(&req, w, h, top, pad_x, elem_h).unwrap_or_default()
    });

    // Draw.
    let accent: Rgb = [
        rng.random_range(30..=90),
        rng.random_range(60..=120),
        rng.random_range(120..=190),
    ];
    let mut canvas = Canvas::new(w as u32, h as u32, BG);
    canvas.fill_rect(0, 0, w, title_h, accent);
    let title = pick(&mut rng, &TITLES, "App");
    canvas.text(2, 2, title, 1, WHITE);
    for e in &elems {
        let (x, y, ew, eh) = e.rect;
        match e.kind {
            Kind::Button => {
                if flat {
                    canvas.fill_rect(x, y, ew, eh, FLAT_BUTTON);
                } else {
                    canvas.fill_rect(x, y, ew, eh, BUTTON);
                    canvas.rect(x, y, ew, eh, BORDER);
                }
                canvas.text(e.label_at.0, e.label_at.1, &e.label, 1, TEXT);
            }
            Kind::Field => {
                canvas.text(e.label_at.0, e.label_at.1, &e.label, 1, TEXT);
                canvas.fill_rect(x, y, ew, eh, WHITE);
                if e.focused {
                    canvas.rect(x, y, ew, eh, FOCUS);
                    canvas.rect(x + 1, y + 1, ew - 2, eh - 2, FOCUS);
                    canvas.fill_rect(x + 3, y + 2, 1, eh - 4, TEXT);
                } else {
                    canvas.rect(x, y, ew, eh, BORDER);
                }
            }
            Kind::Note => {
                canvas.text(e.label_at.0, e.label_at.1, &e.label, 1, CODE_INK);
            }
        }
    }
    Scene {
        image: canvas.finish(),
        elems,
        task,
        width: w,
        height: h,
    }
}

impl Scene {
    /// The clickable element the task targets.
    fn target(&self) -> Option<&Elem> {
        match &self.task {
            Task::ClickButton(l) => self
                .elems
                .iter()
                .find(|e| e.kind == Kind::Button && &e.label == l),
            Task::ClickField(l) => self
                .elems
                .iter()
                .find(|e| e.kind == Kind::Field && &e.label == l),
            _ => None,
        }
    }

    /// `rect` on the 0–1000 grid, rounded outwards.
    fn grid_box(&self, rect: (i64, i64, i64, i64)) -> [u32; 4] {
        let (x, y, w, h) = rect;
        let (sw, sh) = (self.width.max(1), self.height.max(1));
        let g = i64::from(GRID);
        let to = |v: i64| v.clamp(0, g) as u32;
        [
            to(x * g / sw),
            to(y * g / sh),
            to(((x + w) * g + sw - 1) / sw),
            to(((y + h) * g + sh - 1) / sh),
        ]
    }

    fn focused_label(&self) -> String {
        self.elems
            .iter()
            .find(|e| e.focused)
            .map(|e| e.label.clone())
            .unwrap_or_default()
    }
}

impl Domain for Gui {
    fn name(&self) -> &str {
        "gui"
    }

    fn verifier(&self) -> &str {
        "gui"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let s = render(seed, difficulty);
        let (instruction, answer, think) = match &s.task {
            Task::ClickButton(l) | Task::ClickField(l) => {
                let what = if matches!(s.task, Task::ClickButton(_)) {
                    format!("the {l} button")
                } else {
                    format!("the text field labelled {l}")
                };
                let instruction = if matches!(s.task, Task::ClickButton(_)) {
                    format!("Click the {l} button.")
                } else {
                    format!("Click the text field labelled {l}.")
                };
                let rect = s.target().map(|e| e.rect).unwrap_or((0, 0, s.width, s.height));
                let b = s.grid_box(rect);
                let answer = Answer::Action(Action::Click { target: b });
                let where_ = if matches!(s.task, Task::ClickField(_)) {
                    format!(" (the input box right of the {l} label)")
                } else {
                    String::new()
                };
                let think = format!(
                    "On the {}x{} screen, {what}{where_} spans x {}–{} and y {}–{} in pixels, which is x {}–{} and y {}–{} on the 0–1000 grid. I click its centre, ({}, {}).",
                    s.width,
                    s.height,
                    rect.0,
                    rect.0 + rect.2 - 1,
                    rect.1,
                    rect.1 + rect.3 - 1,
                    b[0],
                    b[2],
                    b[1],
                    b[3],
                    (b[0] + b[2]) / 2,
                    (b[1] + b[3]) / 2
                );
                (instruction, answer, think)
            }
            Task::TypeGiven(t) => (
                format!("Type '{t}' into the focused field."),
                Answer::Action(Action::Type { text: t.clone() }),
                format!(
                    "The focused field, with the blue border, is the {} field; the text to type is {t}.",
                    s.focused_label()
                ),
            ),
            Task::TypeCode(c) => (
                "Type the code shown on the screen into the focused field.".to_string(),
                Answer::Action(Action::Type { text: c.clone() }),
                format!(
                    "The screen reads \"Code {c}\", so the code is {c}. The focused field, with the blue border, is the {} field, so I type {c}.",
                    s.focused_label()
                ),
            ),
        };
        let prompt = format!(
            "{instruction} Answer with one action in a box: click(x=…, y=…) on a 0–1000 grid ((0, 0) is the top-left corner of the screen, (1000, 1000) the bottom-right), or type(text=\"…\")."
        );
        let template = glm_template(&think, "Action: ", &answer.response());
        Sample::new("gui", prompt, vec![s.image], answer, difficulty, template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlcs_rewards::Registry;
    use std::collections::HashSet;

    const LEVELS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    #[test]
    fn clicking_another_element_is_wrong() {
        let reg = Registry::builtin();
        let v = reg.get(Gui.verifier()).unwrap();
        for seed in 0..200u64 {
            let s = Gui.generate(seed, (seed % 21) as f32 / 20.0);
            let boxed = format!("<|begin_of_box|>{}<|end_of_box|>", s.answer.response());
            assert!(s.template.contains(&boxed));
            let sc = render(seed, (seed % 21) as f32 / 20.0);
            if let Some(t) = sc.target() {
                for e in sc.elems.iter().filter(|e| e.kind != Kind::Note) {
                    if e.rect == t.rect {
                        continue;
                    }
                    let b = sc.grid_box(e.rect);
                    let other = format!("click(x={}, y={})", (b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
                    let wrong = s
                        .template
                        .replace(&boxed, &format!("<|begin_of_box|>{other}<|end_of_box|>"));
                    assert!(v.verify(&wrong, &s.gold).reward < 1.0, "{wrong}");
                }
            }
        }
    }

    /// Top-left corners where `s` is drawn in colour `c` (every glyph pixel matches).
    fn find_text(img: &Image, s: &str, c: Rgb) -> Vec<(i64, i64)> {
        let mut probe = Canvas::new(
            Canvas::text_width(s, 1).max(1) as u32,
            font::HEIGHT as u32,
            [0, 0, 0],
        );
        probe.text(0, 0, s, 1, [255, 255, 255]);
        let probe = probe.finish();
        let mut on = Vec::new();
        for y in 0..probe.height {
            for x in 0..probe.width {
                if probe.get(x, y) == Some([255, 255, 255]) {
                    on.push((i64::from(x), i64::from(y)));
                }
            }
        }
        let mut hits = Vec::new();
        for y in 0..i64::from(img.height) {
            for x in 0..i64::from(img.width) {
                if on
                    .iter()
                    .all(|&(dx, dy)| img.get((x + dx) as u32, (y + dy) as u32) == Some(c))
                {
                    hits.push((x, y));
                }
            }
        }
        hits
    }

    #[test]
    fn the_target_is_on_screen_and_the_click_lands_in_it() {
        for seed in 0..300u64 {
            let d = (seed % 11) as f32 / 10.0;
            let s = render(seed, d);
            let img = &s.image;
            // Elements are inside the screen and do not overlap.
            for (i, a) in s.elems.iter().enumerate() {
                let (x, y, w, h) = a.rect;
                assert!(x >= 0 && y >= 0 && x + w <= s.width && y + h <= s.height);
                assert!(w >= 3 && h >= 3);
                for b in s.elems.iter().skip(i + 1) {
                    let (bx, by, bw, bh) = b.rect;
                    assert!(x + w <= bx || bx + bw <= x || y + h <= by || by + bh <= y);
                }
            }
            let labels: Vec<&String> = s
                .elems
                .iter()
                .filter(|e| e.kind != Kind::Note)
                .map(|e| &e.label)
                .collect();
            let distinct: HashSet<&&String> = labels.iter().collect();
            assert_eq!(distinct.len(), labels.len(), "seed {seed}");
            match &s.task {
                Task::ClickButton(l) | Task::ClickField(l) => {
                    let t = s.target().expect("target placed");
                    let (x, y, w, h) = t.rect;
                    // The label is drawn once: inside a button, left of a field box.
                    let hits = find_text(img, l, TEXT);
                    assert_eq!(hits, vec![t.label_at], "seed {seed}: {l}");
                    if t.kind == Kind::Button {
                        assert!(hits[0].0 >= x && hits[0].0 < x + w);
                    } else {
                        assert!(
                            hits[0].0 < x
                                && x - (hits[0].0 + Canvas::text_width(l, 1)) <= LABEL_GAP
                        );
                    }
                    // The response's click, mapped back to pixels, lands in the box.
                    let b = s.grid_box(t.rect);
                    let (cx, cy) = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
                    let (px, py) = (
                        f64::from(cx) * s.width as f64 / 1000.0,
                        f64::from(cy) * s.height as f64 / 1000.0,
                    );
                    assert!(px >= x as f64 && px <= (x + w) as f64, "seed {seed}");
                    assert!(py >= y as f64 && py <= (y + h) as f64, "seed {seed}");
                }
                Task::TypeGiven(_) | Task::TypeCode(_) => {
                    let focused: Vec<&Elem> = s.elems.iter().filter(|e| e.focused).collect();
                    assert_eq!(focused.len(), 1, "seed {seed}");
                    let (x, y, _, _) = focused[0].rect;
                    assert_eq!(img.get(x as u32, y as u32), Some(FOCUS));
                    if let Task::TypeCode(c) = &s.task {
                        assert_eq!(find_text(img, &format!("Code {c}"), CODE_INK).len(), 1);
                    }
                }
            }
        }
    }

    #[test]
    fn difficulty_adds_elements_and_look_alikes() {
        let mean = |d: f32, f: &dyn Fn(&Scene) -> f64| {
            (0..100u64).map(|s| f(&render(s, d))).sum::<f64>() / 100.0
        };
        let elements: Vec<f64> = LEVELS
            .iter()
            .map(|&d| {
                mean(d, &|s| {
                    s.elems.iter().filter(|e| e.kind != Kind::Note).count() as f64
                })
            })
            .collect();
        // Look-alikes: pairs of buttons on screen whose labels have the same length
        // and differ in at most two letters.
        let look_alikes: Vec<f64> = LEVELS
            .iter()
            .map(|&d| {
                mean(d, &|s| {
                    let buttons: Vec<&String> = s
                        .elems
                        .iter()
                        .filter(|e| e.kind == Kind::Button)
                        .map(|e| &e.label)
                        .collect();
                    let mut pairs = 0;
                    for (i, a) in buttons.iter().enumerate() {
                        for b in buttons.iter().skip(i + 1) {
                            let diff = a.chars().zip(b.chars()).filter(|(x, y)| x != y).count();
                            if a.len() == b.len() && diff <= 2 {
                                pairs += 1;
                            }
                        }
                    }
                    f64::from(pairs)
                })
            })
            .collect();
        for series in [&elements, &look_alikes] {
            assert!(series.windows(2).all(|w| w[1] >= w[0]), "{series:?}");
            assert!(series[4] > series[0], "{series:?}");
        }
    }
}
