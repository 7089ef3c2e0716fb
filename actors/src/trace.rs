//! Traces: the run's `tracing` spans as OpenTelemetry spans.
//!
//! [`init`] installs the process's subscriber: log lines on stderr (filtered by
//! `RLCS_LOG`) and an OpenTelemetry layer that turns the spans of the `rlcs_*`
//! crates (run, stage, iteration, phases, and each actor message handled) into
//! OpenTelemetry spans. Finished spans go to a JSONL file in the run directory
//! ([`Tracing::write_spans_to`], one [`SpanRecord`] per line; `rlcs trace` reads
//! it) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, to that collector over OTLP/HTTP
//! with protobuf (the exporter reads the standard `OTEL_EXPORTER_OTLP_*`
//! variables: headers, timeout).
//!
//! The trace context crosses actors inside messages as a W3C `traceparent` string
//! ([`TraceContext`]): plain data, so it survives a hop to another process.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The span file of a run directory.
pub const SPANS_FILE: &str = "spans.jsonl";

/// One finished span, as written to `spans.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id (16 zeros for a root span).
    pub parent_span_id: String,
    /// Span name (`run`, `stage`, `iteration`, `replica.generate`, …).
    pub name: String,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u64,
    /// Attributes, as strings.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Spans this one is linked to, as `(trace id, span id)`.
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

impl SpanRecord {
    /// Duration in milliseconds.
    pub fn ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    fn of(span: &SpanData) -> Self {
        let ns = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        };
        SpanRecord {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: span.parent_span_id.to_string(),
            name: span.name.to_string(),
            start_ns: ns(span.start_time),
            end_ns: ns(span.end_time),
            attributes: span
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect(),
            links: span
                .links
                .iter()
                .map(|l| {
                    (
                        l.span_context.trace_id().to_string(),
                        l.span_context.span_id().to_string(),
                    )
                })
                .collect(),
        }
    }
}

type SpanOut = Arc<Mutex<Option<BufWriter<File>>>>;

type CollectorSlot = Arc<Mutex<Option<Arc<opentelemetry_otlp::SpanExporter>>>>;

/// Where the current run's finished spans go: JSON lines into its span file (none:
/// not written) and its OTLP collector, if it names one (`[telemetry]
/// otlp_endpoint`). One exporter behind one batch processor: one background thread
/// and no copy of each span per destination.
#[derive(Debug, Clone)]
struct RunExporter {
    out: SpanOut,
    collector: CollectorSlot,
}

impl SpanExporter for RunExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        if let Ok(mut out) = self.out.lock() {
            if let Some(w) = out.as_mut() {
                for span in &batch {
                    if let Ok(line) = serde_json::to_string(&SpanRecord::of(span)) {
                        let _ = writeln!(w, "{line}");
                    }
                }
                let _ = w.flush();
            }
        }
        let target = self.collector.lock().ok().and_then(|s| s.clone());
        async move {
            match target {
                Some(exporter) => exporter.export(batch).await,
                None => Ok(()),
            }
        }
    }
}

/// The process's tracing: the provider and where its spans are written.
#[derive(Debug, Clone)]
pub struct Tracing {
    provider: SdkTracerProvider,
    out: SpanOut,
    collector: CollectorSlot,
    resource: opentelemetry_sdk::Resource,
    /// Whether spans also go to an OTLP collector.
    pub otlp: bool,
}

impl Tracing {
    /// Sends finished spans to `run_dir/spans.jsonl` (appended to) from now on.
    pub fn write_spans_to(&self, run_dir: &Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join(SPANS_FILE))?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(BufWriter::new(file));
        }
        Ok(())
    }

    /// Sends finished spans to the OTLP/HTTP collector at `traces_url` (the full
    /// URL, `…/v1/traces`) from now on, besides any the environment names, until
    /// [`Tracing::finish_run`]. The standard `OTEL_EXPORTER_OTLP_*` variables for
    /// headers and timeout still apply.
    pub fn export_run_to(&self, traces_url: &str) -> Result<(), String> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_url)
            .build()
            .map_err(|e| format!("OTLP exporter for {traces_url}: {e}"))?;
        exporter.set_resource(&self.resource);
        if let Ok(mut slot) = self.collector.lock() {
            *slot = Some(Arc::new(exporter));
        }
        Ok(())
    }

    /// Exports every finished span now and closes the run's file and collector
    /// (the run's end): spans after it, such as those of a later run in the same
    /// process that keeps no span file, go nowhere until [`Tracing::write_spans_to`]
    /// or [`Tracing::export_run_to`] names a new one.
    pub fn finish_run(&self) {
        let _ = self.provider.force_flush();
        if let Ok(mut out) = self.out.lock() {
            if let Some(mut w) = out.take() {
                let _ = w.flush();
            }
        }
        if let Ok(mut slot) = self.collector.lock() {
            *slot = None;
        }
    }

    /// Flushes and stops the exporters.
    pub fn shutdown(&self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).map(|s| !s.is_empty()).unwrap_or(false))
}

static GLOBAL: std::sync::OnceLock<Tracing> = std::sync::OnceLock::new();

/// The tracing [`init`] installed, if any.
pub fn global() -> Option<&'static Tracing> {
    GLOBAL.get()
}

/// Installs the process's subscriber: stderr logs filtered by `RLCS_LOG` (default
/// `error`) and OpenTelemetry spans of the `rlcs_*` crates filtered by `RLCS_TRACE`
/// (default info; `RLCS_TRACE=rlcs_actors=debug` adds a span per group and pool
/// job). Returns
/// an error if the OTLP exporter is configured but cannot be built.
pub fn init() -> Result<Tracing, String> {
    let out: SpanOut = Arc::new(Mutex::new(None));
    let collector: CollectorSlot = Arc::new(Mutex::new(None));
    let mut builder = SdkTracerProvider::builder().with_batch_exporter(RunExporter {
        out: out.clone(),
        collector: collector.clone(),
    });
    let otlp = otlp_configured();
    if otlp {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("rlcs")
        .build();
    let provider = builder.with_resource(resource.clone()).build();
    let tracer = provider.tracer("rlcs");
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("RLCS_LOG").unwrap_or_else(|_| EnvFilter::new("error")),
        );
    // Info: run, stages, iterations and their phases, and the singletons' handlers
    // (about ten spans an iteration); debug adds a span per group and per pool job
    // (replica, verifier, loader), a hundred or more an iteration.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        // No busy/idle timings and no OpenTelemetry context attached on every poll
        // of an instrumented future: the parent of a span is its `tracing` parent
        // (or a `TraceContext` carried in a message), so neither is needed, and both
        // cost a clock read and a registry lookup per poll.
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(EnvFilter::try_from_env("RLCS_TRACE").unwrap_or_else(|_| {
            EnvFilter::new("rlcs=info,rlcs_actors=info,rlcs_experiments=info")
        }));
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| format!("installing the tracing subscriber: {e}"))?;
    let tracing = Tracing {
        provider,
        out,
        collector,
        resource,
        otlp,
    };
    let _ = GLOBAL.set(tracing.clone());
    Ok(tracing)
}

/// A span's context carried inside a message: the W3C `traceparent` of the sender's
/// span (empty when no tracing is installed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext(pub String);

impl TraceContext {
    /// The context of the current `tracing` span.
    pub fn current() -> Self {
        Self::of(&tracing::Span::current())
    }

    /// The context of `span`.
    pub fn of(span: &tracing::Span) -> Self {
        if span.is_disabled() {
            return TraceContext::default();
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            return TraceContext::default();
        }
        Self::from_span_context(&sc)
    }

    /// The W3C `traceparent` (version 00) of `sc`, written directly (as the
    /// propagator would, without its map).
    fn from_span_context(sc: &opentelemetry::trace::SpanContext) -> Self {
        TraceContext(format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        ))
    }

    fn context(&self) -> Option<opentelemetry::Context> {
        if self.0.is_empty() {
            return None;
        }
        let carrier: std::collections::HashMap<String, String> =
            [("traceparent".to_string(), self.0.clone())].into();
        let cx = TraceContextPropagator::new().extract(&carrier);
        cx.span().span_context().is_valid().then_some(cx)
    }

    /// Makes `span` a child of the sender's span.
    pub fn adopt(&self, span: &tracing::Span) {
        if span.is_disabled() {
            return;
        }
        if let Some(cx) = self.context() {
            let _ = span.set_parent(cx);
        }
    }

    /// Links `span` to the sender's span (a handler working on a batch built from
    /// many messages links to each).
    pub fn link(&self, span: &tracing::Span) {
        if span.is_disabled() {
            return;
        }
        if let Some(cx) = self.context() {
            span.add_link(cx.span().span_context().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_context_is_ignored() {
        let span = tracing::info_span!("x");
        TraceContext::default().adopt(&span);
        TraceContext("junk".into()).link(&span);
        assert_eq!(TraceContext::of(&span), TraceContext::default());
    }

    #[test]
    fn a_context_written_directly_reads_back_through_the_propagator() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let written = TraceContext::from_span_context(&sc);
        assert_eq!(
            written.0,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let cx = written.context().unwrap();
        let back = cx.span().span_context().clone();
        assert_eq!(back.trace_id(), sc.trace_id());
        assert_eq!(back.span_id(), sc.span_id());
        assert!(back.is_remote() && back.is_sampled());
    }
}
