//! Grounding: the bounding box of the one object a phrase describes.
//!
//! **Task.** One image of coloured shapes (filled circles, squares and up-pointing
//! triangles in [`PALETTE`] colours) on a white or light background. The prompt
//! describes one object uniquely — "the blue triangle", or, when several objects share
//! its colour and shape, with a position word: "the leftmost green square" (also
//! rightmost, topmost, bottommost) — and asks for its bounding box.
//!
//! **Image.** 40–96 px per side (each side drawn separately, so aspect ratios vary by
//! seed). Objects never touch (at least two blank pixels apart), so each one is seen
//! whole. A position word is used only when the described object's centre beats
//! every other object of its colour and shape along that axis by at least
//! `max(4, r + 1)` pixels (`r` its radius), so "leftmost" is plain to see.
//!
//! **Answer.** [`Answer::Boxes`] with one box `[x1, y1, x2, y2]` on the 0–1000 grid:
//! the object's drawn pixels span columns `x0..=x1'` and rows `y0..=y1'` of a `W × H`
//! image, and the box is their outer pixel edges scaled to the grid, `x1 =
//! ⌊1000·x0/W⌋`, `x2 = ⌈1000·(x1'+1)/W⌉` (likewise for `y` with `H`) — the tight
//! box, to within one grid unit. Scored by the `grounding` verifier (IoU > 0.5).
//!
//! **Difficulty knobs** (`d` in `[0, 1]`, all monotone):
//! - *distractors*: 2–3 at `d = 0` up to 6–11 at `d = 1`;
//! - *confusable share*: the chance `d` that a distractor has the same shape in a
//!   similar colour (red/orange, blue/purple, black/gray, …), the target's colour in
//!   another shape, or its shape in another colour; the rest differ in both and avoid
//!   similar colours;
//! - *position words*: with probability `d` the scene holds 1 to `1 + round(2·d)`
//!   more objects of the target's colour and shape, and the prompt needs a position
//!   word (never at `d = 0`);
//! - *object size*: radius 6–8 px down to 3–4 px (objects 7–17 px across);
//! - *canvas*: sides 40–64 px up to 72–96 px, to make room for the extra objects.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::answer::GRID;
use crate::image::{PALETTE, WHITE};
use crate::knobs::{lerp, pick};
use crate::shapes::{box_gap, colour_name, colour_rgb, Shape, SHAPES};
use crate::{glm_template, Answer, Canvas, Domain, Image, Rgb, Sample};

/// Boxing the one object a short phrase describes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grounding;

/// Light backgrounds (none is a palette colour).
const BACKGROUNDS: [Rgb; 4] = [WHITE, [248, 246, 238], [240, 244, 250], [243, 249, 243]];
/// Layout tries before giving up on position words.
const ATTEMPTS: usize = 20;
/// Random positions tried per object.
const POSITION_TRIES: usize = 60;
/// Blank pixels between any two objects, at least.
const GAP: i64 = 2;

/// Colours a viewer may confuse, by name.
const SIMILAR: [(&str, [&str; 2]); 8] = [
    ("red", ["orange", "purple"]),
    ("green", ["yellow", "gray"]),
    ("blue", ["purple", "black"]),
    ("yellow", ["orange", "green"]),
    ("purple", ["blue", "red"]),
    ("orange", ["red", "yellow"]),
    ("black", ["gray", "blue"]),
    ("gray", ["black", "green"]),
];

fn colour_index(name: &str) -> Option<usize> {
    PALETTE.iter().position(|(n, _)| *n == name)
}

/// Palette indices of the colours similar to `i`.
fn similar_colours(i: usize) -> Vec<usize> {
    SIMILAR
        .iter()
        .find(|(n, _)| *n == colour_name(i))
        .map(|(_, s)| s.iter().filter_map(|n| colour_index(n)).collect())
        .unwrap_or_default()
}

/// Which way the position word points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extreme {
    Left,
    Right,
    Top,
    Bottom,
}

const EXTREMES: [Extreme; 4] = [Extreme::Left, Extreme::Right, Extreme::Top, Extreme::Bottom];

impl Extreme {
    fn word(self) -> &'static str {
        match self {
            Extreme::Left => "leftmost",
            Extreme::Right => "rightmost",
            Extreme::Top => "topmost",
            Extreme::Bottom => "bottommost",
        }
    }

    /// The key to minimise: the object that minimises it is the extreme one.
    fn key(self, o: &Obj) -> i64 {
        match self {
            Extreme::Left => o.cx,
            Extreme::Right => -o.cx,
            Extreme::Top => o.cy,
            Extreme::Bottom => -o.cy,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Obj {
    shape: Shape,
    colour: usize,
    cx: i64,
    cy: i64,
    r: i64,
}

impl Obj {
    /// Blank pixel columns (or rows) between the two bounding boxes, the larger.
    fn draw(&self, c: &mut Canvas, rgb: Rgb) {
        self.shape.draw(c, self.cx, self.cy, self.r, rgb);
    }

    fn gap(&self, o: &Obj) -> i64 {
        box_gap((self.cx, self.cy), self.r, (o.cx, o.cy), o.r)
    }

    fn same_kind(&self, o: &Obj) -> bool {
        self.colour == o.colour && self.shape == o.shape
    }

    /// The columns and rows the drawn shape covers, `(x0, y0, x1, y1)` inclusive.
    fn pixel_extent(&self, width: u32, height: u32) -> (i64, i64, i64, i64) {
        let mut c = Canvas::new(width, height, [0, 0, 0]);
        self.draw(&mut c, WHITE);
        let img = c.finish();
        let (mut x0, mut y0, mut x1, mut y1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
        for y in 0..height {
            for x in 0..width {
                if img.get(x, y) == Some(WHITE) {
                    let (x, y) = (i64::from(x), i64::from(y));
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                }
            }
        }
        if x0 > x1 {
            // Never happens for a placed object; fall back to the geometric box.
            return (
                self.cx - self.r,
                self.cy - self.r,
                self.cx + self.r,
                self.cy + self.r,
            );
        }
        (x0, y0, x1, y1)
    }
}

/// `(x0, y0, x1, y1)` inclusive pixel extent to the 0–1000 grid box.
fn grid_box(extent: (i64, i64, i64, i64), width: u32, height: u32) -> [u32; 4] {
    let g = i64::from(GRID);
    let (w, h) = (i64::from(width).max(1), i64::from(height).max(1));
    let lo = |v: i64, n: i64| (v.max(0) * g / n).clamp(0, g) as u32;
    let hi = |v: i64, n: i64| (((v + 1).max(1) * g + n - 1) / n).clamp(0, g) as u32;
    let (x0, y0, x1, y1) = extent;
    [lo(x0, w), lo(y0, h), hi(x1, w), hi(y1, h)]
}

#[derive(Debug, Clone)]
struct Scene {
    width: u32,
    height: u32,
    background: Rgb,
    /// The described object is `objects[0]`.
    objects: Vec<Obj>,
    extreme: Option<Extreme>,
}

impl Scene {
    fn target(&self) -> Option<&Obj> {
        self.objects.first()
    }

    fn render(&self) -> Image {
        let mut c = Canvas::new(self.width, self.height, self.background);
        for o in &self.objects {
            o.draw(&mut c, colour_rgb(o.colour));
        }
        c.finish()
    }
}

/// Difficulty knobs (see the module docs).
struct Knobs {
    side: (u32, u32),
    distractors: (usize, usize),
    radius: (i64, i64),
    confusable: f64,
    position: f64,
    duplicates: usize,
}

fn knobs(d: f64) -> Knobs {
    Knobs {
        side: (lerp(40.0, 72.0, d) as u32, lerp(64.0, 96.0, d) as u32),
        distractors: (lerp(2.0, 6.0, d) as usize, lerp(3.0, 11.0, d) as usize),
        radius: (lerp(6.0, 3.0, d), lerp(8.0, 4.0, d)),
        confusable: d,
        position: d,
        duplicates: lerp(1.0, 3.0, d) as usize,
    }
}

fn clamp_difficulty(d: f32) -> f64 {
    if d.is_finite() {
        f64::from(d.clamp(0.0, 1.0))
    } else {
        0.0
    }
}

/// A random position for `o` at least [`GAP`] blank pixels from every placed object.
fn place(rng: &mut ChaCha8Rng, o: Obj, placed: &[Obj], width: u32, height: u32) -> Option<Obj> {
    let (xl, xh) = (o.r + 1, i64::from(width) - 2 - o.r);
    let (yl, yh) = (o.r + 1, i64::from(height) - 2 - o.r);
    if xl > xh || yl > yh {
        return None;
    }
    (0..POSITION_TRIES).find_map(|_| {
        let cand = Obj {
            cx: rng.random_range(xl..=xh),
            cy: rng.random_range(yl..=yh),
            ..o
        };
        placed.iter().all(|p| cand.gap(p) >= GAP).then_some(cand)
    })
}

/// The directions in which one object of `group` is clearly the extreme one, with
/// that object's index.
fn clear_extremes(group: &[Obj]) -> Vec<(Extreme, usize)> {
    EXTREMES
        .iter()
        .filter_map(|&e| {
            let best = (0..group.len()).min_by_key(|&i| group.get(i).map_or(0, |o| e.key(o)))?;
            let b = group.get(best)?;
            let margin = 4.max(b.r + 1);
            let clear = group
                .iter()
                .enumerate()
                .all(|(i, o)| i == best || e.key(o) - e.key(b) >= margin);
            clear.then_some((e, best))
        })
        .collect()
}

impl Grounding {
    fn scene(seed: u64, difficulty: f32) -> Scene {
        let d = clamp_difficulty(difficulty);
        let k = knobs(d);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let width = rng.random_range(k.side.0..=k.side.1);
        let height = rng.random_range(k.side.0..=k.side.1);
        let background = pick(&mut rng, &BACKGROUNDS, WHITE);
        let colour = rng.random_range(0..PALETTE.len());
        let shape = pick(&mut rng, &SHAPES, Shape::Circle);
        let similar = similar_colours(colour);
        let other_colours: Vec<usize> = (0..PALETTE.len()).filter(|&c| c != colour).collect();
        let plain_colours: Vec<usize> = other_colours
            .iter()
            .copied()
            .filter(|c| !similar.contains(c))
            .collect();
        let other_shapes: Vec<Shape> = SHAPES.iter().copied().filter(|&s| s != shape).collect();

        let duplicates = if rng.random::<f64>() < k.position {
            rng.random_range(1..=k.duplicates.max(1))
        } else {
            0
        };
        let n_distractors = rng.random_range(k.distractors.0..=k.distractors.1);
        let radius = |rng: &mut ChaCha8Rng| rng.random_range(k.radius.0..=k.radius.1);
        let mut kinds: Vec<(usize, Shape, i64)> = Vec::with_capacity(n_distractors);
        for _ in 0..n_distractors {
            let (c, s) = if rng.random::<f64>() < k.confusable {
                match rng.random_range(0..3) {
                    0 if !similar.is_empty() => (pick(&mut rng, &similar, colour), shape),
                    1 => (colour, pick(&mut rng, &other_shapes, shape)),
                    _ => (pick(&mut rng, &other_colours, colour), shape),
                }
            } else {
                (
                    pick(&mut rng, &plain_colours, colour),
                    pick(&mut rng, &other_shapes, shape),
                )
            };
            kinds.push((c, s, radius(&mut rng)));
        }
        let group_radii: Vec<i64> = (0..=duplicates).map(|_| radius(&mut rng)).collect();

        let mut best: Option<(Vec<Obj>, Option<Extreme>)> = None;
        for attempt in 0..=ATTEMPTS {
            // The last try gives up on position words: the target alone.
            let n_group = if attempt < ATTEMPTS {
                group_radii.len()
            } else {
                1
            };
            let mut group: Vec<Obj> = Vec::with_capacity(n_group);
            for &r in group_radii.iter().take(n_group) {
                let o = Obj {
                    shape,
                    colour,
                    cx: 0,
                    cy: 0,
                    r,
                };
                if let Some(o) = place(&mut rng, o, &group, width, height) {
                    group.push(o);
                }
            }
            if group.is_empty() {
                continue;
            }
            let (target, extreme) = if group.len() == 1 {
                (0, None)
            } else {
                let options = clear_extremes(&group);
                if options.is_empty() {
                    continue;
                }
                let (e, i) = pick(&mut rng, &options, (Extreme::Left, 0));
                (i, Some(e))
            };
            // The target goes first.
            if target < group.len() {
                group.swap(0, target);
            }
            let mut objects = group;
            for &(c, s, r) in &kinds {
                let o = Obj {
                    shape: s,
                    colour: c,
                    cx: 0,
                    cy: 0,
                    r,
                };
                if let Some(o) = place(&mut rng, o, &objects, width, height) {
                    objects.push(o);
                }
            }
            best = Some((objects, extreme));
            break;
        }
        // The target alone always fits a canvas at least 40 px across; keep a
        // centred one should every try have failed.
        let (objects, extreme) = best.unwrap_or_else(|| {
            let o = Obj {
                shape,
                colour,
                cx: i64::from(width) / 2,
                cy: i64::from(height) / 2,
                r: group_radii.first().copied().unwrap_or(3),
            };
            (vec![o], None)
        });
        Scene {
            width,
            height,
            background,
            objects,
            extreme,
        }
    }
}

impl Domain for Grounding {
    fn name(&self) -> &str {
        "grounding"
    }

    fn verifier(&self) -> &str {
        "grounding"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let scene = Self::scene(seed, difficulty);
        let (w, h) = (scene.width, scene.height);
        let fallback = Obj {
            shape: Shape::Circle,
            colour: 0,
            cx: i64::from(w) / 2,
            cy: i64::from(h) / 2,
            r: 3,
        };
        let t = scene.target().copied().unwrap_or(fallback);
        let kind = format!("{} {}", colour_name(t.colour), t.shape.name());
        let desc = match scene.extreme {
            Some(e) => format!("the {} {kind}", e.word()),
            None => format!("the {kind}"),
        };
        let prompt = format!(
            "Find {desc} in the image. Give its bounding box as [x1,y1,x2,y2] on a 0-1000 grid \
             (x scaled to the image width, y to its height)."
        );
        let extent = t.pixel_extent(w, h);
        let b = grid_box(extent, w, h);
        let same = scene.objects.iter().filter(|o| o.same_kind(&t)).count();
        let which = match scene.extreme {
            Some(e) => format!(
                "There are {same} {kind}s; the {} one is centred at x {}, y {}.",
                e.word(),
                t.cx,
                t.cy
            ),
            None => format!(
                "The {kind} is the only one, centred at x {}, y {}.",
                t.cx, t.cy
            ),
        };
        let think = format!(
            "The image is {w}x{h} pixels with {} shapes. {which} It covers columns {} to {} and \
             rows {} to {}, so scaled to the 0-1000 grid its box is [{},{},{},{}].",
            scene.objects.len(),
            extent.0,
            extent.2,
            extent.1,
            extent.3,
            b[0],
            b[1],
            b[2],
            b[3]
        );
        let answer = Answer::Boxes { boxes: vec![b] };
        let template = glm_template(
            &think,
            &format!("The box of {desc} is "),
            &answer.response(),
        );
        Sample::new(
            "grounding",
            prompt,
            vec![scene.render()],
            answer,
            difficulty,
            template,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{classify, components, extent};

    const DIFFS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    fn gold_box(s: &Sample) -> [u32; 4] {
        match &s.answer {
            Answer::Boxes { boxes } if boxes.len() == 1 => boxes[0],
            a => panic!("not one box: {a:?}"),
        }
    }

    #[test]
    fn difficulty_adds_objects_and_position_words() {
        let mut objects = Vec::new();
        let mut positional = Vec::new();
        for diff in DIFFS {
            let (mut n, mut p) = (0usize, 0usize);
            for seed in 0..100 {
                let s = Grounding.generate(seed, diff);
                // Objects never touch: the palette-coloured blobs are the objects.
                n += PALETTE
                    .iter()
                    .map(|(_, c)| components(&s.images[0], *c).len())
                    .sum::<usize>();
                p += usize::from(s.prompt.contains("most "));
            }
            objects.push(n as f64 / 100.0);
            positional.push(p);
        }
        assert!(objects.windows(2).all(|w| w[0] <= w[1]), "{objects:?}");
        assert!(objects[4] > objects[0] + 4.0, "{objects:?}");
        assert_eq!(positional[0], 0);
        assert!(
            positional.windows(2).all(|w| w[0] <= w[1]),
            "{positional:?}"
        );
        assert!(positional[4] > 70, "{positional:?}");
    }

    #[test]
    fn the_gold_box_is_the_described_object() {
        for diff in DIFFS {
            for seed in 0..100 {
                let s = Grounding.generate(seed, diff);
                let img = &s.images[0];
                let (w, h) = (img.width as f64, img.height as f64);
                let b = gold_box(&s);
                // Read the description off the prompt.
                let name = s.prompt.trim_start_matches("Find the ");
                let mut words = name.split(' ');
                let mut first = words.next().unwrap();
                let extreme = EXTREMES.iter().copied().find(|e| e.word() == first);
                if extreme.is_some() {
                    first = words.next().unwrap();
                }
                let colour = colour_index(first).unwrap();
                let shape_word = words.next().unwrap();
                let shape = SHAPES
                    .iter()
                    .copied()
                    .find(|x| x.name() == shape_word)
                    .unwrap();
                // The blobs of that colour and shape, read from the image.
                let group: Vec<Vec<(i64, i64)>> = components(img, colour_rgb(colour))
                    .into_iter()
                    .filter(|c| classify(c) == shape)
                    .collect();
                let centre = |c: &[(i64, i64)]| {
                    let (x0, y0, x1, y1) = extent(c);
                    ((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0)
                };
                let target = match extreme {
                    None => {
                        assert_eq!(group.len(), 1, "seed {seed}: {}", s.prompt);
                        &group[0]
                    }
                    Some(e) => {
                        assert!(group.len() >= 2, "seed {seed}: {}", s.prompt);
                        let key = |c: &Vec<(i64, i64)>| {
                            let (x, y) = centre(c);
                            match e {
                                Extreme::Left => x,
                                Extreme::Right => -x,
                                Extreme::Top => y,
                                Extreme::Bottom => -y,
                            }
                        };
                        let mut sorted: Vec<&Vec<(i64, i64)>> = group.iter().collect();
                        sorted.sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap());
                        assert!(key(sorted[1]) - key(sorted[0]) >= 4.0, "seed {seed}");
                        sorted[0]
                    }
                };
                // Every target pixel lies inside the box.
                let (bx0, by0) = (b[0] as f64 * w / 1000.0, b[1] as f64 * h / 1000.0);
                let (bx1, by1) = (b[2] as f64 * w / 1000.0, b[3] as f64 * h / 1000.0);
                for &(x, y) in target {
                    assert!(x as f64 >= bx0 && (x + 1) as f64 <= bx1, "seed {seed}");
                    assert!(y as f64 >= by0 && (y + 1) as f64 <= by1, "seed {seed}");
                }
                // The box is tight (within a pixel of the blob's extent) and the
                // blob fills most of it (a triangle fills just over half its box).
                let (x0, y0, x1, y1) = extent(target);
                assert!(
                    bx0 > (x0 - 1) as f64 && bx1 < (x1 + 2) as f64,
                    "seed {seed}"
                );
                assert!(
                    by0 > (y0 - 1) as f64 && by1 < (y1 + 2) as f64,
                    "seed {seed}"
                );
                let area = (bx1 - bx0) * (by1 - by0);
                let fill = target.len() as f64 / area;
                assert!(fill >= 0.5, "seed {seed}: fill {fill}");
                if shape == Shape::Square {
                    assert!(fill >= 0.85, "seed {seed}: fill {fill}");
                }
            }
        }
    }

    #[test]
    fn grid_boxes_are_tight_and_valid() {
        assert_eq!(grid_box((0, 0, 63, 47), 64, 48), [0, 0, 1000, 1000]);
        assert_eq!(grid_box((10, 20, 18, 28), 64, 48), [156, 416, 297, 605]);
        for seed in 0..300 {
            let s = Grounding.generate(seed, (seed % 11) as f32 / 10.0);
            let b = gold_box(&s);
            assert!(b[0] < b[2] && b[2] <= GRID && b[1] < b[3] && b[3] <= GRID);
        }
    }
}
