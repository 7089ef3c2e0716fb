//! Video: questions about motion across a short sequence of frames, answered with a
//! count.
//!
//! **Task.** 2–8 images of the same size are consecutive frames of a video of
//! coloured shapes (filled circles, squares and up-pointing triangles in
//! [`PALETTE`] colours) on a white or light background. Between frames some shapes
//! move. Every shape in a video has its own colour-and-shape combination, so "the red
//! circle" names one object across frames. Three question kinds, all with a whole
//! number as the answer (so one verifier, `counting`, scores them all):
//!
//! - **moves**: "How many times does the red circle move from one frame to the next?"
//!   — the number of consecutive frame pairs in which its position differs (0 to
//!   frames − 1). The shape is visible in every frame.
//! - **visible**: "In how many frames is the blue square visible?" — the shape is
//!   left out of some frames (at least one frame shows it); at higher difficulty
//!   other shapes flicker too.
//! - **moved**: "How many shapes are in a different place in the last frame than in
//!   the first frame?" — every shape is visible in every frame; a shape that moves
//!   away and comes back to the very same spot does not count.
//!
//! **Images.** 40–96 px per side (each side drawn separately, so aspect ratios vary by
//! seed), the same size and background in every frame. Shapes never touch in any
//! frame (at least two blank pixels apart) and stay inside it. A move shifts a shape
//! by a whole number of pixels along one of eight directions; a move with no free
//! landing spot in a bounded number of tries is skipped, and the answer counts only
//! the moves actually drawn.
//!
//! **Answer.** [`Answer::number`]; scored by the `counting` verifier.
//!
//! **Difficulty knobs** (`d` in `[0, 1]`, all monotone):
//! - *frames*: 2–3 at `d = 0` up to 6–8 at `d = 1`;
//! - *distractors*: 1–2 up to 4–6 other shapes; with chance `d` each shares the
//!   named shape's colour or its shape;
//! - *moving distractors*: in the moves and visible kinds each distractor moves
//!   between two frames with chance `0.1 + 0.6·d` (the named shape with chance 1/2),
//!   and in the visible kind each is also hidden from a frame with chance `0.3·d`; in
//!   the moved kind half the shapes (by a fair coin each) move at least once, always
//!   the same way (so they end at least one step from where they began), and each
//!   other shape is, with chance `d`, a decoy that moves away and later comes back to
//!   its spot (it does not count);
//! - *move size*: 6–9 px down to 2–3 px per axis;
//! - *object size*: radius 5–6 px down to 3–4 px (shapes 7–13 px across);
//! - *canvas*: sides 40–64 px up to 72–96 px.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::{PALETTE, WHITE};
use crate::knobs::{lerp, pick};
use crate::shapes::{box_gap, colour_name, colour_rgb, Shape, SHAPES};
use crate::{glm_template, Answer, Canvas, Domain, Image, Rgb, Sample};

/// Counting questions about motion over a few video frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct Video;

/// Light backgrounds (none is a palette colour).
const BACKGROUNDS: [Rgb; 4] = [WHITE, [248, 246, 238], [240, 244, 250], [243, 249, 243]];
/// Random positions tried when placing a shape in the first frame.
const POSITION_TRIES: usize = 60;
/// Random moves tried before a shape stays put.
const MOVE_TRIES: usize = 30;
/// Blank pixels between any two shapes, at least.
const GAP: i64 = 2;
/// The eight directions of a move.
const DIRECTIONS: [(i64, i64); 8] = [
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (1, 1),
    (1, -1),
    (-1, 1),
    (-1, -1),
];

/// The question kinds (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Moves,
    Visible,
    Moved,
}

const KINDS: [Kind; 3] = [Kind::Moves, Kind::Visible, Kind::Moved];

/// What a shape does between two frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Stay,
    /// A random move to a free spot (stays when none is found).
    Random,
    /// A move by a random step along this direction (stays when no spot is free).
    Along((i64, i64)),
    /// Back to where it was in frame `.0` (stays when that spot is taken).
    BackTo(usize),
}

/// One shape over the frames.
#[derive(Debug, Clone)]
struct Track {
    shape: Shape,
    colour: usize,
    r: i64,
    /// Centre per frame.
    pos: Vec<(i64, i64)>,
    /// Drawn in that frame?
    shown: Vec<bool>,
}

impl Track {
    fn name(&self) -> String {
        format!("{} {}", colour_name(self.colour), self.shape.name())
    }

    fn at(&self, t: usize) -> (i64, i64) {
        self.pos.get(t).copied().unwrap_or((0, 0))
    }

    fn draw(&self, c: &mut Canvas, t: usize) {
        if !self.shown.get(t).copied().unwrap_or(false) {
            return;
        }
        let (cx, cy) = self.at(t);
        self.shape.draw(c, cx, cy, self.r, colour_rgb(self.colour));
    }

    /// Frame pairs `(t, t + 1)` in which the shape's position changes.
    fn moves(&self) -> usize {
        self.pos.windows(2).filter(|w| w[0] != w[1]).count()
    }

    fn frames_shown(&self) -> Vec<usize> {
        (0..self.shown.len())
            .filter(|&t| self.shown.get(t) == Some(&true))
            .collect()
    }
}

/// "right", "up and left", … for a shift.
fn direction(dx: i64, dy: i64) -> String {
    let v = match dy.signum() {
        -1 => Some("up"),
        1 => Some("down"),
        _ => None,
    };
    let h = match dx.signum() {
        -1 => Some("left"),
        1 => Some("right"),
        _ => None,
    };
    match (v, h) {
        (Some(v), Some(h)) => format!("{v} and {h}"),
        (Some(s), None) | (None, Some(s)) => s.to_string(),
        (None, None) => "nowhere".to_string(),
    }
}

/// "1, 3 and 4".
fn list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

#[derive(Debug, Clone)]
struct Scene {
    width: u32,
    height: u32,
    background: Rgb,
    frames: usize,
    kind: Kind,
    /// `tracks[0]` is the shape the question names (moves and visible kinds).
    tracks: Vec<Track>,
}

impl Scene {
    fn render(&self) -> Vec<Image> {
        (0..self.frames)
            .map(|t| {
                let mut c = Canvas::new(self.width, self.height, self.background);
                for tr in &self.tracks {
                    tr.draw(&mut c, t);
                }
                c.finish()
            })
            .collect()
    }

    fn moved_between_ends(&self) -> Vec<&Track> {
        let last = self.frames.saturating_sub(1);
        self.tracks
            .iter()
            .filter(|tr| tr.at(0) != tr.at(last))
            .collect()
    }
}

/// Difficulty knobs (see the module docs).
struct Knobs {
    side: (u32, u32),
    frames: (usize, usize),
    distractors: (usize, usize),
    radius: (i64, i64),
    step: (i64, i64),
    confusable: f64,
    distractor_moves: f64,
    flicker: f64,
}

fn knobs(d: f64) -> Knobs {
    Knobs {
        side: (lerp(40.0, 72.0, d) as u32, lerp(64.0, 96.0, d) as u32),
        frames: (lerp(2.0, 6.0, d) as usize, lerp(3.0, 8.0, d) as usize),
        distractors: (lerp(1.0, 4.0, d) as usize, lerp(2.0, 6.0, d) as usize),
        radius: (lerp(5.0, 3.0, d), lerp(6.0, 4.0, d)),
        step: (lerp(6.0, 2.0, d), lerp(9.0, 3.0, d)),
        confusable: d,
        distractor_moves: 0.1 + 0.6 * d,
        flicker: 0.3 * d,
    }
}

fn clamp_difficulty(d: f32) -> f64 {
    if d.is_finite() {
        f64::from(d.clamp(0.0, 1.0))
    } else {
        0.0
    }
}

/// Whether a shape of radius `r` centred at `p` lies inside the frame (one pixel
/// margin) and clear of every other track's position in frame `t`.
fn free(p: (i64, i64), r: i64, me: usize, tracks: &[Track], t: usize, w: u32, h: u32) -> bool {
    let inside =
        p.0 - r >= 1 && p.1 - r >= 1 && p.0 + r <= i64::from(w) - 2 && p.1 + r <= i64::from(h) - 2;
    inside
        && tracks
            .iter()
            .enumerate()
            .all(|(j, o)| j == me || box_gap(p, r, o.at(t), o.r) >= GAP)
}

impl Video {
    fn scene(seed: u64, difficulty: f32) -> Scene {
        let d = clamp_difficulty(difficulty);
        let k = knobs(d);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let width = rng.random_range(k.side.0..=k.side.1);
        let height = rng.random_range(k.side.0..=k.side.1);
        let background = pick(&mut rng, &BACKGROUNDS, WHITE);
        let frames = rng.random_range(k.frames.0..=k.frames.1).clamp(2, 8);
        let kind = pick(&mut rng, &KINDS, Kind::Moves);
        let colour = rng.random_range(0..PALETTE.len());
        let shape = pick(&mut rng, &SHAPES, Shape::Circle);

        // Distinct colour-and-shape combinations, the named one first.
        let mut combos = vec![(colour, shape)];
        let n_distractors = rng.random_range(k.distractors.0..=k.distractors.1);
        for _ in 0..n_distractors {
            let confusable = rng.random::<f64>() < k.confusable;
            // Bounded: 24 combinations, at most 7 taken.
            for _ in 0..50 {
                let c = if confusable && rng.random::<bool>() {
                    colour
                } else {
                    rng.random_range(0..PALETTE.len())
                };
                let s = if confusable && c != colour {
                    shape
                } else {
                    pick(&mut rng, &SHAPES, shape)
                };
                if !combos.contains(&(c, s)) {
                    combos.push((c, s));
                    break;
                }
            }
        }

        // First frame: place every shape.
        let mut tracks: Vec<Track> = Vec::with_capacity(combos.len());
        for &(c, s) in &combos {
            let r = rng.random_range(k.radius.0..=k.radius.1);
            let (xl, xh) = (r + 1, i64::from(width) - 2 - r);
            let (yl, yh) = (r + 1, i64::from(height) - 2 - r);
            if xl > xh || yl > yh {
                continue;
            }
            let spot = (0..POSITION_TRIES).find_map(|_| {
                let p = (rng.random_range(xl..=xh), rng.random_range(yl..=yh));
                free(p, r, usize::MAX, &tracks, 0, width, height).then_some(p)
            });
            if let Some(p) = spot {
                tracks.push(Track {
                    shape: s,
                    colour: c,
                    r,
                    pos: vec![p],
                    shown: vec![true; frames],
                });
            }
        }

        // What each shape does at each transition (frame t - 1 to frame t).
        let plans: Vec<Vec<Plan>> = (0..tracks.len())
            .map(|i| {
                let mut plan = vec![Plan::Stay; frames];
                if kind == Kind::Moved {
                    // Half the shapes are movers: at least one try, then a fair coin
                    // per transition, always the same way, so a mover that moved ends
                    // at least one step from its start. With chance d a non-mover is
                    // a decoy that moves away and later comes back.
                    if rng.random::<bool>() {
                        let forced = rng.random_range(1..frames);
                        let dir = pick(&mut rng, &DIRECTIONS, (1, 0));
                        for (t, p) in plan.iter_mut().enumerate().skip(1) {
                            if t == forced || rng.random::<bool>() {
                                *p = Plan::Along(dir);
                            }
                        }
                    } else if frames >= 3 && rng.random::<f64>() < d {
                        let away = rng.random_range(1..frames - 1);
                        let back = rng.random_range(away + 1..frames);
                        if let Some(p) = plan.get_mut(away) {
                            *p = Plan::Random;
                        }
                        if let Some(p) = plan.get_mut(back) {
                            *p = Plan::BackTo(away - 1);
                        }
                    }
                } else {
                    let chance = if i == 0 { 0.5 } else { k.distractor_moves };
                    for p in plan.iter_mut().skip(1) {
                        if rng.random::<f64>() < chance {
                            *p = Plan::Random;
                        }
                    }
                }
                plan
            })
            .collect();

        // Later frames: each shape stays or moves to a free spot.
        for t in 1..frames {
            for tr in tracks.iter_mut() {
                let p = tr.at(t - 1);
                tr.pos.push(p);
            }
            for i in 0..tracks.len() {
                let Some(tr) = tracks.get(i) else { continue };
                let (p, r) = (tr.at(t), tr.r);
                let plan = plans
                    .get(i)
                    .and_then(|pl| pl.get(t))
                    .copied()
                    .unwrap_or(Plan::Stay);
                let target = match plan {
                    Plan::Stay => None,
                    Plan::BackTo(f) => {
                        let q = tr.at(f);
                        (q != p && free(q, r, i, &tracks, t, width, height)).then_some(q)
                    }
                    Plan::Along((dx, dy)) => (0..MOVE_TRIES).find_map(|_| {
                        let step = rng.random_range(k.step.0..=k.step.1);
                        let q = (p.0 + dx * step, p.1 + dy * step);
                        free(q, r, i, &tracks, t, width, height).then_some(q)
                    }),
                    Plan::Random => (0..MOVE_TRIES).find_map(|_| {
                        let (dx, dy) = pick(&mut rng, &DIRECTIONS, (1, 0));
                        let step = rng.random_range(k.step.0..=k.step.1);
                        let q = (p.0 + dx * step, p.1 + dy * step);
                        free(q, r, i, &tracks, t, width, height).then_some(q)
                    }),
                };
                if let Some(q) = target {
                    if let Some(slot) = tracks.get_mut(i).and_then(|tr| tr.pos.get_mut(t)) {
                        *slot = q;
                    }
                }
            }
        }

        if kind == Kind::Visible {
            for (i, tr) in tracks.iter_mut().enumerate() {
                let hide = if i == 0 { 0.4 } else { k.flicker };
                for s in tr.shown.iter_mut() {
                    *s = rng.random::<f64>() >= hide;
                }
                if i == 0 && !tr.shown.contains(&true) {
                    let t = rng.random_range(0..frames);
                    if let Some(s) = tr.shown.get_mut(t) {
                        *s = true;
                    }
                }
            }
        }

        Scene {
            width,
            height,
            background,
            frames,
            kind,
            tracks,
        }
    }
}

impl Domain for Video {
    fn name(&self) -> &str {
        "video"
    }

    fn verifier(&self) -> &str {
        "counting"
    }

    fn generate(&self, seed: u64, difficulty: f32) -> Sample {
        let scene = Self::scene(seed, difficulty);
        let n = scene.frames;
        let intro = format!("The {n} images are consecutive frames of a video.");
        let named = scene.tracks.first();
        let name = named.map_or_else(|| "red circle".to_string(), Track::name);
        let (question, think, value) = match (scene.kind, named) {
            (Kind::Moves, Some(tr)) => {
                let steps: Vec<String> = (1..n)
                    .map(|t| {
                        let (a, b) = (tr.at(t - 1), tr.at(t));
                        if a == b {
                            format!("Frames {t} to {}: it stays", t + 1)
                        } else {
                            format!(
                                "Frames {t} to {}: it moves {}",
                                t + 1,
                                direction(b.0 - a.0, b.1 - a.1)
                            )
                        }
                    })
                    .collect();
                let m = tr.moves();
                let times = if m == 1 { "time" } else { "times" };
                (
                    format!("How many times does the {name} move from one frame to the next?"),
                    format!(
                        "I follow the {name} through the {n} frames. {}. So it moves {m} {times}.",
                        steps.join(". ")
                    ),
                    m,
                )
            }
            (Kind::Visible, Some(tr)) => {
                let shown = tr.frames_shown();
                let hidden: Vec<String> = (1..=n)
                    .filter(|t| !shown.contains(&(t - 1)))
                    .map(|t| t.to_string())
                    .collect();
                let seen: Vec<String> = shown.iter().map(|t| (t + 1).to_string()).collect();
                let frame_word = |k: usize| if k == 1 { "frame" } else { "frames" };
                let missing = if hidden.is_empty() {
                    "and is never missing".to_string()
                } else {
                    format!(
                        "and is missing from {} {}",
                        frame_word(hidden.len()),
                        list(&hidden)
                    )
                };
                (
                    format!("In how many frames is the {name} visible?"),
                    format!(
                        "I look for the {name} in each of the {n} frames. It appears in {} {} \
                         {missing}. So it is visible in {} {}.",
                        frame_word(seen.len()),
                        list(&seen),
                        seen.len(),
                        frame_word(seen.len())
                    ),
                    seen.len(),
                )
            }
            _ => {
                let moved = scene.moved_between_ends();
                let last = n.saturating_sub(1);
                let parts: Vec<String> = scene
                    .tracks
                    .iter()
                    .map(|tr| {
                        let (a, b) = (tr.at(0), tr.at(last));
                        if a == b && tr.moves() > 0 {
                            format!("the {} moved but is back where it was", tr.name())
                        } else if a == b {
                            format!("the {} is where it was", tr.name())
                        } else {
                            format!(
                                "the {} has moved {}",
                                tr.name(),
                                direction(b.0 - a.0, b.1 - a.1)
                            )
                        }
                    })
                    .collect();
                let m = moved.len();
                let verb = if m == 1 { "shape is" } else { "shapes are" };
                (
                    "How many shapes are in a different place in the last frame than in the \
                     first frame?"
                        .to_string(),
                    format!(
                        "I compare frame 1 with frame {n}: {}. So {m} {verb} in a different \
                         place.",
                        list(&parts)
                    ),
                    m,
                )
            }
        };
        let prompt = format!("{intro} {question} Answer with a number.");
        let answer = Answer::number(value);
        let template = glm_template(&think, "The answer is ", &answer.response());
        Sample::new(
            "video",
            prompt,
            scene.render(),
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
    use std::collections::BTreeMap;

    const DIFFS: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    /// Shapes read off one frame: (colour, shape) → top-left corner of the blob.
    fn read_frame(img: &Image) -> BTreeMap<(usize, Shape), (i64, i64)> {
        let mut out = BTreeMap::new();
        for (ci, (_, rgb)) in PALETTE.iter().enumerate() {
            for comp in components(img, *rgb) {
                let (x0, y0, _, _) = extent(&comp);
                let shape = classify(&comp);
                let old = out.insert((ci, shape), (x0, y0));
                assert!(old.is_none(), "two blobs read as the same shape");
            }
        }
        out
    }

    #[test]
    fn difficulty_adds_frames_shapes_and_moving_distractors() {
        let (mut frames, mut shapes, mut movers) = (Vec::new(), Vec::new(), Vec::new());
        for diff in DIFFS {
            let (mut f, mut n, mut m) = (0usize, 0usize, 0usize);
            for seed in 0..100 {
                let s = Video.generate(seed, diff);
                f += s.images.len();
                // Shapes read off the frames, and the distractor moves between frames.
                let reads: Vec<_> = s.images.iter().map(read_frame).collect();
                let scene = Video::scene(seed, diff);
                n += scene.tracks.len();
                let named = scene.tracks.first().map(|t| (t.colour, t.shape));
                for w in reads.windows(2) {
                    m += w[0]
                        .iter()
                        .filter(|(k, p)| Some(**k) != named && w[1].get(k).is_some_and(|q| q != *p))
                        .count();
                }
            }
            frames.push(f as f64 / 100.0);
            shapes.push(n as f64 / 100.0);
            movers.push(m as f64 / 100.0);
        }
        for v in [&frames, &shapes, &movers] {
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
            assert!(v[4] > v[0], "{v:?}");
        }
        assert!(frames[4] > frames[0] + 3.0, "{frames:?}");
    }

    #[test]
    fn the_answer_is_in_the_frames() {
        let mut kinds = BTreeMap::new();
        for diff in DIFFS {
            for seed in 0..100 {
                let s = Video.generate(seed, diff);
                let scene = Video::scene(seed, diff);
                let reads: Vec<_> = s.images.iter().map(read_frame).collect();
                let gold: usize = s.gold.parse().unwrap();
                let named = (scene.tracks[0].colour, scene.tracks[0].shape);
                assert!(s.prompt.contains(&scene.tracks[0].name()) || scene.kind == Kind::Moved);
                let from_images = match scene.kind {
                    Kind::Moves => {
                        assert!(reads.iter().all(|r| r.contains_key(&named)));
                        reads
                            .windows(2)
                            .filter(|w| w[0].get(&named) != w[1].get(&named))
                            .count()
                    }
                    Kind::Visible => reads.iter().filter(|r| r.contains_key(&named)).count(),
                    Kind::Moved => {
                        let (first, last) = (&reads[0], &reads[reads.len() - 1]);
                        assert_eq!(first.len(), scene.tracks.len());
                        assert_eq!(last.len(), scene.tracks.len());
                        // A shape that moved ends at least one step away.
                        let step = knobs(clamp_difficulty(diff)).step.0;
                        for (k, p) in first {
                            let q = last[k];
                            let off = (q.0 - p.0).abs().max((q.1 - p.1).abs());
                            assert!(off == 0 || off >= step, "seed {seed}: moved {off}");
                        }
                        first.iter().filter(|(k, p)| last.get(k) != Some(p)).count()
                    }
                };
                assert_eq!(from_images, gold, "seed {seed} d {diff}: {}", s.prompt);
                *kinds.entry(format!("{:?}", scene.kind)).or_insert(0) += 1;
                if scene.kind == Kind::Visible {
                    assert!(gold >= 1);
                }
            }
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }
}
