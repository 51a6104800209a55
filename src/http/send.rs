//! Sending one try of a request: after any hold the server asked for, in a free slot among the
//! requests in flight, with the client's credentials; its answer read within the body's
//! bounds. And what is counted and logged about it.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::de::DeserializeOwned;

use super::error::{default_hint, describe, ApiError, ApiErrorKind};
use super::retry::{exhausted_budget, Answer, Failure};
use super::wait::ServerWait;
use super::{answer, body, human, Api, Auth, Effect, Reply, Request};

impl Api {
    /// One try: after any hold the server asked for, in a free connection slot. The outer
    /// error is a stop that came first.
    pub(super) async fn attempt_once(
        &self,
        req: &Request<'_>,
        what: &str,
    ) -> Result<Result<Answer, reqwest::Error>, ApiError> {
        if !self.hold.wait_out(&self.stop).await {
            return Err(self.stopped(what));
        }
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.ok(),
            () = self.stop.wait() => return Err(self.stopped(what)),
        };
        if let Some(on_send) = req.on_send {
            on_send();
        }
        Ok(self.attempt(req).await)
    }

    /// The request on the wire, and its answer read within the bounds of `body`.
    async fn attempt(&self, req: &Request<'_>) -> Result<Answer, reqwest::Error> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self
            .client
            .request(req.method.clone(), &url)
            .query(&req.query)
            .header(reqwest::header::ACCEPT, "application/json");
        builder = match &self.auth {
            Auth::Basic { user, token } => builder.basic_auth(user, Some(token.expose())),
            Auth::Bearer(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
                value.set_sensitive(true);
                builder.header(AUTHORIZATION, value)
            }
        };
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let resp = builder.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = if status.is_success() {
            body::read(resp, body::MAX_BODY, true, &self.bodies).await?
        } else {
            body::read(resp, body::MAX_ERROR_BODY, false, &self.bodies).await?
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A 2xx: note an exhausted budget, then decode. A body over the bound is refused unread.
    pub(super) fn accept<T: DeserializeOwned>(
        &self,
        req: &Request<'_>,
        what: &str,
        answer: Answer,
    ) -> Result<Reply<T>, ApiError> {
        if let Some(wait) = exhausted_budget(&answer.headers, self.retry.max_wait) {
            // The server says the next request would be refused: wait before it.
            self.hold.extend(wait);
        }
        let decoded = if answer.body.cut {
            Err(Failure::new(ApiErrorKind::OutOfBounds {
                cause: format!(
                    "HTTP {} with an answer over {} MiB, the most this tool reads",
                    answer.status.as_u16(),
                    body::MAX_BODY >> 20
                ),
            }))
        } else {
            answer::decode(answer.status, answer.headers, &answer.body.bytes)
        };
        decoded.map_err(|failure| {
            // The server accepted the create; an unreadable answer does not make it undone.
            let kind = match (req.effect, failure.kind) {
                (Effect::Create, ApiErrorKind::Decode { status, cause }) => {
                    ApiErrorKind::Ambiguous {
                        cause: format!("HTTP {status} with {cause}"),
                    }
                }
                (Effect::Create, ApiErrorKind::OutOfBounds { cause }) => {
                    ApiErrorKind::Ambiguous { cause }
                }
                (_, other) => other,
            };
            let source = failure.source;
            self.error(what, Failure { kind, source })
        })
    }

    /// The server asked for a wait longer than `retry.max_wait`: the request fails, naming
    /// the header and its value.
    pub(super) fn too_long(&self, what: &str, kind: &ApiErrorKind, w: &ServerWait) -> ApiError {
        let cause = format!(
            "{}; the server asks to wait {} ({}: {}), longer than retry.max_wait ({})",
            describe(kind),
            human(w.wait),
            w.header,
            w.value,
            human(self.retry.max_wait)
        );
        self.error(what, Failure::new(ApiErrorKind::OutOfBounds { cause }))
            .with_hint(
                "the next pass tries again; raise retry.max_wait to wait longer within a pass",
            )
    }

    pub(super) fn note_retry(
        &self,
        what: &str,
        kind: &ApiErrorKind,
        status_label: &str,
        wait: Duration,
        attempt: u32,
    ) {
        tracing::warn!(
            server = %self.server,
            request = %what,
            error = %describe(kind),
            retry_in_ms = wait.as_millis() as u64,
            attempt,
            "request failed; retrying"
        );
        if let Some(m) = &self.metrics {
            m.inc(
                "jgr_http_retries_total",
                "HTTP requests retried, by server and cause.",
                &[("server", self.server.label()), ("status", status_label)],
                1.0,
            );
        }
    }

    /// The request's final error, with the fix for its kind where one is known.
    pub(super) fn error(&self, what: &str, failure: Failure) -> ApiError {
        ApiError {
            server: self.server,
            // Paths of later pages come from the server's links.
            what: crate::safe_text::safe_within(what, 512),
            hint: default_hint(self.server, &failure.kind),
            kind: failure.kind,
            source: failure.source,
        }
    }

    /// A stop came before the request went out.
    pub(super) fn stopped(&self, what: &str) -> ApiError {
        self.error(what, Failure::new(ApiErrorKind::Stopped))
    }

    pub(super) fn count(&self, status: &str) {
        if let Some(m) = &self.metrics {
            m.inc(
                "jgr_http_requests_total",
                "HTTP requests sent, by server and status (or transport error).",
                &[("server", self.server.label()), ("status", status)],
                1.0,
            );
        }
    }
}
