//! `rlcs trace RUN_DIR`: where a run's time went, from its span file.
//!
//! Reads `spans.jsonl` (written by every run, see [`rlcs_actors::trace`]) and prints
//! the time of each stage, the phases of the RL iterations, and the critical path
//! of one iteration: the chain of spans that decided when it ended.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rlcs_actors::trace::{SpanRecord, SPANS_FILE};

/// Errors of `rlcs trace`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The span file cannot be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A line is not a span.
    #[error("{path}:{line}: not a span: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The asked iteration has no span.
    #[error("no span of iteration {0} (iterations traced: {1})")]
    NoIteration(u32, String),
}

/// Reads a run's span file. A torn last line (a killed run) is skipped; any other
/// bad line is an error naming it.
pub fn read_spans(run_dir: &Path) -> Result<Vec<SpanRecord>, TraceError> {
    let path = run_dir.join(SPANS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TraceError::Read {
        path: path.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "no span file (runs write one since traces were added)".into()
        } else {
            e.to_string()
        },
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut spans = Vec::with_capacity(lines.len());
    for (k, line) in lines.iter().enumerate() {
        match serde_json::from_str::<SpanRecord>(line) {
            Ok(s) => spans.push(s),
            Err(_) if k + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(TraceError::Line {
                    path,
                    line: k + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(spans)
}

/// How far a span may end after its successor started and still count as before
/// it on a critical path.
const OVERLAP_NS: u64 = 1_000_000;

/// The spans of one trace, indexed by id with their children in start order.
struct Tree<'a> {
    children: HashMap<&'a str, Vec<&'a SpanRecord>>,
}

impl<'a> Tree<'a> {
    fn new(spans: &'a [SpanRecord]) -> Self {
        let mut children: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
        for s in spans {
            children
                .entry(s.parent_span_id.as_str())
                .or_default()
                .push(s);
        }
        for c in children.values_mut() {
            c.sort_by_key(|s| (s.start_ns, s.end_ns));
        }
        Tree { children }
    }

    fn children(&self, span: &SpanRecord) -> &[&'a SpanRecord] {
        self.children
            .get(span.span_id.as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// The critical path under `span`: walking back from its end, the child that
    /// ended last, then the one that ended last before that child started, and so
    /// on (a span's end is recorded when it is dropped, so sequential neighbours
    /// may overlap by up to [`OVERLAP_NS`]); each step descends into its own
    /// critical path.
    fn critical_path(
        &self,
        span: &'a SpanRecord,
        depth: usize,
        out: &mut Vec<(usize, &'a SpanRecord)>,
    ) {
        out.push((depth, span));
        let mut chain = Vec::new();
        let mut horizon = span.end_ns;
        let kids = self.children(span);
        // A child recorded as ending after its parent (dropped late on a busy
        // machine) counts as ending with it; the last child may even be recorded
        // as starting up to OVERLAP_NS after its parent ended.
        let end = |c: &SpanRecord| c.end_ns.min(span.end_ns);
        loop {
            let latest_start = if chain.is_empty() {
                horizon.saturating_add(OVERLAP_NS)
            } else {
                horizon
            };
            let next = kids
                .iter()
                .filter(|c| {
                    c.start_ns < latest_start
                        && end(c) <= horizon.saturating_add(OVERLAP_NS)
                        && !chain.iter().any(|p: &&SpanRecord| p.span_id == c.span_id)
                })
                .max_by_key(|c| end(c));
            match next {
                Some(c) => {
                    chain.push(*c);
                    horizon = horizon.min(c.start_ns);
                }
                None => break,
            }
        }
        for c in chain.into_iter().rev() {
            self.critical_path(c, depth + 1, out);
        }
    }
}

fn attr<'a>(s: &'a SpanRecord, key: &str) -> &'a str {
    s.attributes.get(key).map_or("", String::as_str)
}

/// The `rlcs trace` report: stages, iteration phases and one iteration's critical
/// path (`iteration`: that one; default the last).
pub fn trace_report(spans: &[SpanRecord], iteration: Option<u32>) -> Result<String, TraceError> {
    let tree = Tree::new(spans);
    let mut out = String::new();
    let runs: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == "run").collect();
    for run in &runs {
        let _ = writeln!(
            out,
            "run {} (trace {}): {:.1} s",
            attr(run, "run"),
            run.trace_id,
            run.ms() / 1e3
        );
    }
    let _ = writeln!(out, "\n| stage | seconds |\n|---|---|");
    for s in spans.iter().filter(|s| s.name == "stage") {
        let _ = writeln!(out, "| {} | {:.2} |", attr(s, "stage"), s.ms() / 1e3);
    }

    let iterations: BTreeMap<u32, &SpanRecord> = spans
        .iter()
        .filter(|s| s.name == "iteration")
        .filter_map(|s| attr(s, "iteration").parse().ok().map(|i| (i, s)))
        .collect();
    if iterations.is_empty() {
        let _ = writeln!(out, "\nno RL iterations traced");
        return Ok(out);
    }
    // Phases: time of each direct child kind, summed per iteration.
    let phases = [
        "select",
        "load",
        "rollout_and_score",
        "observe",
        "store",
        "train",
    ];
    let _ = writeln!(
        out,
        "\nRL iterations, milliseconds per phase (children of each iteration span):\n\n| iteration | total | {} | other |\n|---|---|{}---|",
        phases.join(" | "),
        "---|".repeat(phases.len())
    );
    // At most a dozen rows (evenly spaced, first and last included); the mean is
    // over every iteration.
    let step = iterations.len().div_ceil(12).max(1);
    let last = iterations.len() - 1;
    let mut sums = vec![0.0; phases.len() + 2];
    for (k, (i, span)) in iterations.iter().enumerate() {
        let mut row = vec![0.0; phases.len()];
        for c in tree.children(span) {
            if let Some(k) = phases.iter().position(|p| *p == c.name) {
                row[k] += c.ms();
            }
        }
        let other = span.ms() - row.iter().sum::<f64>();
        sums[0] += span.ms();
        for (k, v) in row.iter().enumerate() {
            sums[k + 1] += v;
        }
        sums[phases.len() + 1] += other;
        if k % step == 0 || k == last || Some(*i) == iteration {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:.1}")).collect();
            let _ = writeln!(
                out,
                "| {i} | {:.1} | {} | {other:.1} |",
                span.ms(),
                cells.join(" | ")
            );
        }
    }
    let n = iterations.len() as f64;
    let cells: Vec<String> = sums.iter().map(|v| format!("{:.1}", v / n)).collect();
    let _ = writeln!(
        out,
        "| mean of {} | {} |",
        iterations.len(),
        cells.join(" | ")
    );

    let (&which, span) = match iteration {
        Some(i) => iterations.get_key_value(&i).ok_or_else(|| {
            let have: Vec<String> = iterations.keys().map(|k| k.to_string()).collect();
            let listed = if have.len() > 8 {
                format!("{}…{}", have[0], have[have.len() - 1])
            } else {
                have.join(", ")
            };
            TraceError::NoIteration(i, listed)
        })?,
        None => iterations
            .iter()
            .next_back()
            .ok_or(TraceError::NoIteration(0, String::new()))?,
    };
    let mut path = Vec::new();
    tree.critical_path(span, 0, &mut path);
    let total = span.ms().max(1e-9);
    let _ = writeln!(
        out,
        "\ncritical path of iteration {which} ({:.1} ms):\n",
        span.ms()
    );
    for (depth, s) in path {
        let detail: Vec<String> = s
            .attributes
            .iter()
            .filter(|(k, _)| {
                !(k.starts_with("code.")
                    || k.starts_with("thread.")
                    || matches!(k.as_str(), "busy_ns" | "idle_ns" | "target" | "level"))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "{}{} {:.1} ms ({:.0} %){}",
            "  ".repeat(depth),
            s.name,
            s.ms(),
            100.0 * s.ms() / total,
            if detail.is_empty() {
                String::new()
            } else {
                format!("  [{}]", detail.join(" "))
            }
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, name: &str, start: u64, end: u64) -> SpanRecord {
        SpanRecord {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            name: name.into(),
            start_ns: start * 1_000_000,
            end_ns: end * 1_000_000,
            attributes: BTreeMap::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn the_critical_path_follows_what_ended_last() {
        let mut it = span("i", "0", "iteration", 0, 100);
        it.attributes.insert("iteration".into(), "1".into());
        let spans = vec![
            it,
            span("s", "i", "select", 0, 5),
            span("r", "i", "rollout_and_score", 5, 80),
            // Two groups in parallel: the slower one is critical.
            span("g1", "r", "group", 5, 40),
            span("g2", "r", "group", 6, 78),
            span("t", "i", "train", 80, 100),
        ];
        let text = trace_report(&spans, None).unwrap();
        let path: Vec<&str> = text
            .split("critical path")
            .nth(1)
            .unwrap()
            .lines()
            .skip(2)
            .map(str::trim)
            .collect();
        assert!(path[0].starts_with("iteration 100.0 ms"), "{text}");
        assert!(path[1].starts_with("select 5.0"), "{text}");
        assert!(path[2].starts_with("rollout_and_score 75.0"), "{text}");
        assert!(path[3].starts_with("group 72.0"), "{text}");
        assert!(path[4].starts_with("train 20.0"), "{text}");
        assert!(
            text.contains("| 1 | 100.0 | 5.0 | 0.0 | 75.0 | 0.0 | 0.0 | 20.0 | 0.0 |"),
            "{text}"
        );
        assert!(matches!(
            trace_report(&spans, Some(7)),
            Err(TraceError::NoIteration(7, _))
        ));
    }

    #[test]
    fn a_child_recorded_after_its_parent_ended_stays_on_the_path() {
        let mut it = span("i", "0", "iteration", 0, 100);
        it.attributes.insert("iteration".into(), "1".into());
        // The train span was dropped 5 ms after the iteration's (a busy machine).
        let spans = vec![
            it,
            span("s", "i", "store", 60, 80),
            span("t", "i", "train", 80, 105),
        ];
        let text = trace_report(&spans, None).unwrap();
        let path = text.split("critical path").nth(1).unwrap();
        assert!(
            path.contains("store 20.0") && path.contains("train 25.0"),
            "{text}"
        );
    }

    #[test]
    fn a_last_child_recorded_as_starting_after_its_parent_ended_stays_on_the_path() {
        // The train span's clock read 0.3 ms after the iteration's end: still this
        // iteration's; 2 ms after: not.
        for (start_ns, on_path) in [(100_300_000, true), (102_000_000, false)] {
            let mut it = span("i", "0", "iteration", 0, 100);
            it.attributes.insert("iteration".into(), "1".into());
            let mut train = span("t", "i", "train", 0, 0);
            train.start_ns = start_ns;
            train.end_ns = start_ns + 300_000;
            let spans = vec![it, span("s", "i", "store", 60, 80), train];
            let text = trace_report(&spans, None).unwrap();
            let path = text.split("critical path").nth(1).unwrap();
            assert!(path.contains("store 20.0"), "{text}");
            assert_eq!(path.contains("train"), on_path, "{text}");
        }
    }

    #[test]
    fn bad_lines_are_named_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = serde_json::to_string(&span("a", "0", "run", 0, 1)).unwrap();
        std::fs::write(dir.path().join(SPANS_FILE), format!("{good}\n{{\"trace")).unwrap();
        assert_eq!(read_spans(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join(SPANS_FILE), format!("junk\n{good}\n")).unwrap();
        let err = read_spans(dir.path()).unwrap_err().to_string();
        assert!(err.contains("spans.jsonl:1: not a span"), "{err}");
    }
}
