//! Jira's admin webhooks: listing them and registering the reconciler's (`webhook register`).
//! The token goes only to `jira.url`: a webhook's `self` link elsewhere is never followed.

use reqwest::Method;
use serde_json::{json, Value};

use super::JiraClient;
use crate::http::{ApiError, Effect, Request, Server};

impl JiraClient {
    /// The admin webhooks already registered (`GET /rest/webhooks/1.0/webhook`).
    pub async fn webhooks(&self) -> Result<Vec<RegisteredWebhook>, ApiError> {
        let req = Request::get("/rest/webhooks/1.0/webhook");
        match self.api.send::<Vec<RegisteredWebhook>>(req).await {
            Ok(reply) => Ok(reply.body),
            Err(e) => Err(admin_hint(e)),
        }
    }

    /// Register an admin webhook for issue events (`POST /rest/webhooks/1.0/webhook`: Jira
    /// administrators only), or with `existing` (its `self` link) replace that one's
    /// definition. `secret` makes Cloud sign each delivery (`X-Hub-Signature`); Data Center
    /// ignores it.
    pub async fn register_webhook(
        &self,
        existing: Option<&str>,
        name: &str,
        url: &str,
        jql: &str,
        secret: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut body = json!({
            "name": name,
            "url": url,
            "events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"],
            "filters": { "issue-related-events-section": jql },
            "excludeBody": false,
        });
        if let Some(secret) = secret {
            body["secret"] = json!(secret);
        }
        let req = match existing {
            // The `self` link is absolute; the client wants the path under the base URL, and
            // sends the token only there.
            Some(link) => {
                let path = webhook_path(self.base_url(), link).map_err(|cause| ApiError {
                    server: Server::Jira,
                    what: "PUT (the webhook's self link)".into(),
                    kind: crate::http::ApiErrorKind::OutOfBounds { cause },
                    hint: Some(format!(
                        "the Jira token goes only to jira.url ({}); if Jira's base URL (System → \
                         General configuration) is another address of the same Jira, set jira.url \
                         to it, else update the webhook on Jira's WebHooks admin page",
                        self.base_url()
                    )),
                    source: None,
                })?;
                Request::get(path).json(Method::PUT, body, Effect::Idempotent)
            }
            None => {
                Request::get("/rest/webhooks/1.0/webhook").json(Method::POST, body, Effect::Create)
            }
        };
        match self.api.send::<Value>(req).await {
            Ok(reply) => Ok(reply.body),
            Err(e) => Err(admin_hint(e)),
        }
    }
}

/// An admin webhook as Jira lists it (the secret is never listed).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RegisteredWebhook {
    /// `…/rest/webhooks/1.0/webhook/{id}`.
    #[serde(rename = "self")]
    pub link: String,
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub filters: WebhookFilters,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WebhookFilters {
    #[serde(rename = "issue-related-events-section", default)]
    pub jql: String,
}

/// The path of a webhook's `self` link (from `/rest/webhooks/`), below the configured Jira.
/// A link to another origin (scheme, host, port), or one that is no webhook link at all
/// (a user-info part that would send the request elsewhere), is refused: the Jira token goes
/// only to the configured Jira.
pub(super) fn webhook_path(base: &str, link: &str) -> Result<String, String> {
    let shown = crate::safe_text::safe_within(link, 300);
    let refuse = |why: &str| format!("Jira lists the webhook at {shown:?}: {why}");
    let base = reqwest::Url::parse(base).map_err(|_| refuse("jira.url is not a URL"))?;
    let url = if link.starts_with('/') {
        base.join(link)
    } else {
        reqwest::Url::parse(link)
    }
    .map_err(|_| refuse("not a URL"))?;
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("another host than jira.url"));
    }
    let path = url.path();
    let at = path
        .find("/rest/webhooks/")
        .ok_or_else(|| refuse("not a webhook link"))?;
    Ok(path[at..].to_string())
}

fn admin_hint(e: ApiError) -> ApiError {
    if matches!(e.status(), Some(401 | 403)) {
        e.with_hint(
            "only Jira administrators may manage webhooks: ask one to create it on the \
             WebHooks admin page with what `jira-gitlab-reconciler webhook url` prints",
        )
    } else {
        e
    }
}
