//! The dashboard's web server: the page, its JSON state and `/metrics`.
//!
//! Routes: `/` (the page), `/api/state` (the [`Dashboard`](crate::telemetry::Dashboard)
//! as JSON), `/metrics` (OpenMetrics text for Prometheus), `/healthz`, and the
//! page's scripts under `/assets/`. The charting library (uPlot, MIT) is vendored in
//! `actors/assets/`, so the page works on machines with no outside network.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::oneshot;

use crate::telemetry::Telemetry;

const PAGE: &str = include_str!("../assets/dashboard.html");
const SCRIPT: &str = include_str!("../assets/dashboard.js");
const UPLOT_JS: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uplot/uPlot.min.css");
/// Content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running dashboard server; dropping it (or [`DashboardServer::stop`]) shuts it
/// down.
#[derive(Debug)]
pub struct DashboardServer {
    /// The address it listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DashboardServer {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The dashboard's routes over `telemetry`.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/state", get(state))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/assets/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }),
        )
        .route(
            "/assets/uPlot.iife.min.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], UPLOT_JS) }),
        )
        .route(
            "/assets/uPlot.min.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], UPLOT_CSS) }),
        )
        .with_state(telemetry)
}

async fn state(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    Json(t.dashboard())
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS)], t.metrics_text())
}

/// Binds `addr` and serves the dashboard of `telemetry` on the current tokio
/// runtime until the returned server is stopped or dropped.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
) -> Result<DashboardServer, std::io::Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(telemetry);
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("dashboard server: {e}");
        }
    });
    Ok(DashboardServer {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_page_state_metrics_and_assets() {
        let t = Arc::new(Telemetry::new());
        t.apply(&crate::RunEvent::Evaluated {
            label: "initial".into(),
            accuracy: 0.25,
        });
        let server = serve("127.0.0.1:0".parse().unwrap(), t).await.unwrap();
        let page = get(server.addr, "/").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("/assets/dashboard.js"));
        let state = get(server.addr, "/api/state").await;
        assert!(state.contains("\"evals\":[[\"initial\",0.25]]"), "{state}");
        let metrics = get(server.addr, "/metrics").await;
        assert!(metrics.contains(OPENMETRICS), "{metrics}");
        assert!(metrics.contains("rlcs_eval_accuracy{label=\"initial\"} 0.25"));
        for asset in ["dashboard.js", "uPlot.iife.min.js", "uPlot.min.css"] {
            let a = get(server.addr, &format!("/assets/{asset}")).await;
            assert!(a.starts_with("HTTP/1.1 200"), "{asset}");
        }
        assert!(get(server.addr, "/nope").await.starts_with("HTTP/1.1 404"));
        server.stop().await;
    }
}
