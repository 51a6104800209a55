//! The status page at `/` of the `[metrics]` listener: each mapping's last pass and what needs
//! a person, the webhook, and the lead-time report with its chart, for people who have no
//! shell on the server. One self-contained page (an inline style sheet, inline SVG, no script,
//! nothing fetched from elsewhere) under a `Content-Security-Policy` that allows exactly that
//! style sheet, so it works offline and behind strict proxies.
//!
//! It may be reachable by more people than GitLab is: it shows project names, counts, times
//! and error texts, never an issue's title, a token or a JQL filter, and every value reaches
//! the page escaped (`html`). The state database is read through a read-only connection (a
//! WAL reader never blocks a pass), off the async runtime, and at most [`MAX_RENDERS`] at once.

mod html;
mod model;
mod render;

use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::Metrics;

/// Pages being put together at once; more requests are answered 503 at once (a page takes
/// milliseconds, so only a flood gets there).
const MAX_RENDERS: usize = 2;

/// The page's one style sheet. Light and dark follow the reader's system setting, the chart
/// included (its background, text and grid take the page's colours; `report --svg` keeps its
/// white for a file on its own). One column below 30rem, so the page reads at 360 px wide; below
/// 40rem the chart keeps the size it is drawn at (its `width`; shrunk to a phone's width, its
/// text would be 4 px high) in a box that scrolls sideways and opens at its right end, on the
/// newest weeks.
const STYLE: &str = ":root{color-scheme:light dark;--bg:#f4f5f7;--fg:#1d2125;--muted:#5d6670;\
--card:#ffffff;--line:#d8dce1;--ok:#1a7f37;--bad:#b42318;--warn:#9a6700;--link:#0b5cad}\
@media (prefers-color-scheme:dark){:root{--bg:#101317;--fg:#e4e7eb;--muted:#9aa4ae;\
--card:#1a1e23;--line:#30363d;--ok:#4ac26b;--bad:#ff7b72;--warn:#e3b341;--link:#79b8ff}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
header,main,footer{max-width:62rem;margin:0 auto;padding:0 1rem}\
h1{font-size:1.35rem;margin:1rem 0 .1rem}\
h2{font-size:1.1rem;margin:0 0 .25rem;overflow-wrap:anywhere}\
p{margin:.25rem 0}\
.muted{color:var(--muted)}.name{font-size:.85rem;overflow-wrap:anywhere}\
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}\
.summary{font-weight:600;margin:.75rem 0}\
section{background:var(--card);border:1px solid var(--line);border-radius:8px;\
padding:.9rem 1rem;margin:1rem 0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:.6rem 0 0}\
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}\
.attention{border-left:4px solid var(--bad);padding:.4rem .75rem;margin:.6rem 0;\
overflow-wrap:anywhere}\
a{color:var(--link)}code{font-size:.9em;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}\
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line)}\
td{overflow-wrap:anywhere}\
.scroll{overflow-x:auto}\
.chart svg{display:block;width:100%;height:auto;border-radius:6px}\
.chart .bg{fill:var(--card)}.chart text.ink{fill:var(--fg)}.chart .grid{stroke:var(--line)}\
.narrow{display:none}\
@media (max-width:40rem){.chart{direction:rtl}.chart svg{direction:ltr;width:auto;max-width:none}\
.narrow{display:block}}\
@media (max-width:30rem){dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:.45rem}}";

/// What the page reads, kept by the service (the config follows reloads).
pub struct StatusPage {
    config: RwLock<Arc<Config>>,
    metrics: Arc<Metrics>,
    started: DateTime<Utc>,
    renders: Arc<Semaphore>,
}

impl StatusPage {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Arc<StatusPage> {
        Arc::new(StatusPage {
            config: RwLock::new(Arc::new(cfg.clone())),
            metrics,
            started: Utc::now(),
            renders: Arc::new(Semaphore::new(MAX_RENDERS)),
        })
    }

    /// After a reload: show the mappings that exist now.
    pub fn set_config(&self, cfg: &Config) {
        let mut current = self.config.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(cfg.clone());
    }

    /// The page as of `now`. Blocking: it reads the state database.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let cfg = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        render::page(&model::gather(&cfg, &self.metrics, self.started, now))
    }

    /// `GET /` and `HEAD /`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/", get(show)).with_state(self.clone())
    }
}

async fn show(State(page): State<Arc<StatusPage>>) -> Response {
    let Ok(permit) = page.renders.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "busy: too many status page requests at once; retry in a second\n",
        )
            .into_response();
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        page.render(Utc::now())
    })
    .await;
    match rendered {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, policy()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::CACHE_CONTROL, "no-store"),
            ] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            response
        }
        Err(e) => {
            tracing::error!("the status page could not be put together: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the status page failed; the service's log says why\n",
            )
                .into_response()
        }
    }
}

/// Nothing may load or run but the page's own style sheet, named by its hash (inline SVG is
/// markup, not a resource); no frame may hold the page, no form post from it.
pub fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64(&Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// Standard base64 with padding (RFC 4648 §4), for the style sheet's hash.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(state: &std::path::Path) -> Config {
        let text = format!(
            "[jira]\nurl = \"https://acme.atlassian.net\"\nemail = \"bot@acme.com\"\n\n\
             [gitlab]\nurl = \"https://gitlab.example.com\"\n\n[state]\npath = \"{}\"\n\n\
             [[mapping]]\njira_project = \"VSA\"\ngitlab_project = \"acme/platform\"\n",
            state.display()
        );
        let tokens = |_: &str| Some("token".to_string());
        Config::parse(&text, std::path::Path::new("test.toml"), &tokens).expect("a config")
    }

    #[tokio::test]
    async fn a_flood_of_requests_is_answered_busy_at_once_not_queued() {
        let state = std::env::temp_dir().join(format!("jgr-page-{}.db", std::process::id()));
        let page = StatusPage::new(&config(&state), Arc::new(Metrics::new()));
        let held = page
            .renders
            .clone()
            .try_acquire_many_owned(MAX_RENDERS as u32)
            .expect("every permit");
        let busy = show(State(page.clone())).await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        drop(held);
        let shown = show(State(page)).await;
        assert_eq!(shown.status(), StatusCode::OK);
        assert_eq!(shown.headers()[header::CONTENT_SECURITY_POLICY], policy());
        let body = axum::body::to_bytes(shown.into_body(), 1 << 20)
            .await
            .expect("a body");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("no state database yet: no pass has finished"),
            "{body}"
        );
        assert!(!state.exists(), "a page never creates the database");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn the_policy_allows_only_the_pages_own_style_sheet() {
        let p = policy();
        assert!(
            p.starts_with("default-src 'none'; style-src 'sha256-"),
            "{p}"
        );
        assert!(!p.contains("unsafe"), "{p}");
        // SHA-256 is 32 bytes: 44 base64 characters.
        let hash = p
            .split("'sha256-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .unwrap_or("");
        assert_eq!(hash.len(), 44, "{p}");
    }
}
