//! Admin webhooks, as Jira delivers them: registered through `POST /rest/webhooks/1.0/webhook`
//! (or by a test with [`FakeJira::add_webhook`]), with an optional JQL filter, and posted after
//! every issue write as `jira:issue_created`, `jira:issue_updated` or `jira:issue_deleted`.
//! With a secret, Cloud signs the raw body: `X-Hub-Signature: sha256=<hex HMAC-SHA256>`; Data
//! Center never signs (its secret can only ride in the URL). Delivery is fire-and-forget: a
//! receiver that is down simply misses the event, as with Jira after its few retries.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::row;
use super::jql;
use super::render::{Ctx, FieldSel};
use super::{Deployment, FakeJira, Shared, State};
use crate::lock;

#[derive(Clone, Debug)]
pub struct Webhook {
    pub id: u64,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// `filters."issue-related-events-section"`: only issues it matches are announced.
    pub jql: Option<String>,
    pub secret: Option<String>,
}

/// One POST the fake sent (for tests that replay or inspect deliveries).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub url: String,
    /// The `X-Hub-Signature` header, when the webhook has a secret (Cloud).
    pub signature: Option<String>,
    pub body: String,
}

pub const ISSUE_EVENTS: [&str; 3] = [
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
];

impl FakeJira {
    /// Register a webhook for every issue event, as an admin would on the WebHooks page.
    pub fn add_webhook(&self, url: &str, secret: Option<&str>, jql: Option<&str>) -> u64 {
        register(
            &self.shared,
            "test webhook",
            url,
            ISSUE_EVENTS.iter().map(|e| e.to_string()).collect(),
            jql.map(str::to_string),
            secret.map(str::to_string),
        )
    }

    pub fn webhooks(&self) -> Vec<Webhook> {
        lock(&self.shared.webhooks).clone()
    }

    /// Every delivery sent so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// Stop (or resume) delivering: a receiver that cannot be reached.
    pub fn pause_webhooks(&self, paused: bool) {
        *lock(&self.shared.webhooks_paused) = paused;
    }
}

pub(super) fn register(
    shared: &Shared,
    name: &str,
    url: &str,
    events: Vec<String>,
    jql: Option<String>,
    secret: Option<String>,
) -> u64 {
    let mut hooks = lock(&shared.webhooks);
    let id = hooks.len() as u64 + 1;
    hooks.push(Webhook {
        id,
        name: name.to_string(),
        url: url.to_string(),
        events,
        jql,
        secret: secret.filter(|s| !s.is_empty() && shared.opts.deployment == Deployment::Cloud),
    });
    id
}

/// After a write to issue `id`: post `event` to every webhook that wants it. `st` is the state
/// after the write; a deleted issue is described by its last live version.
pub(super) fn announce(shared: &Shared, st: &State, id: u64, event: &str) {
    if *lock(&shared.webhooks_paused) {
        return;
    }
    let hooks = lock(&shared.webhooks).clone();
    if hooks.is_empty() {
        return;
    }
    let Some(record) = st.issues.get(&id) else {
        return;
    };
    let Some(data) = record.versions.iter().rev().find_map(|v| v.data.as_ref()) else {
        return;
    };
    let now = shared.opts.clock.now();
    let env = jql::Env {
        now,
        offset: shared.opts.utc_offset,
        catalog: st,
    };
    let ctx = Ctx {
        base: shared.base_url(),
        api: "2",
        offset: shared.opts.utc_offset,
        state: st,
    };
    let issue = ctx.issue(id, data, &FieldSel::everything());
    let body = json!({
        "timestamp": now.timestamp_millis(),
        "webhookEvent": event,
        "issue_event_type_name": match event {
            "jira:issue_created" => "issue_created",
            "jira:issue_deleted" => "issue_deleted",
            _ => "issue_generic",
        },
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Someone"},
        "issue": issue,
    })
    .to_string();
    for hook in hooks {
        if !hook.events.iter().any(|e| e == event) {
            continue;
        }
        let wanted = match &hook.jql {
            None => true,
            Some(q) => jql::compile(q, &env)
                .map(|query| query.matches(&row(id, data, &record.old_keys)))
                .unwrap_or(false),
        };
        if wanted {
            send(shared, &hook, body.clone());
        }
    }
}

fn send(shared: &Shared, hook: &Webhook, body: String) {
    let signature = hook.secret.as_deref().map(|s| sign(s, body.as_bytes()));
    lock(&shared.deliveries).push(Delivery {
        url: hook.url.clone(),
        signature: signature.clone(),
        body: body.clone(),
    });
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let url = hook.url.clone();
    let client = shared.http.clone();
    runtime.spawn(async move {
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-hub-signature", sig);
        }
        // Fire and forget: a receiver that is down misses the event.
        let _ = req.send().await;
    });
}

/// `sha256=<hex HMAC-SHA256 of body>`, as Jira Cloud signs.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `POST /rest/webhooks/1.0/webhook`: an admin registers a webhook.
/// A webhook's definition in a `POST` or `PUT` body.
struct Definition {
    name: String,
    url: String,
    events: Vec<String>,
    jql: Option<String>,
    secret: Option<String>,
}

fn definition(body: &Value) -> Result<Definition, &'static str> {
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http"))
        .ok_or("url is missing or not http(s)")?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("webhook");
    let events: Vec<String> = body
        .get("events")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if events.is_empty() {
        return Err("events is missing");
    }
    let jql = body
        .pointer("/filters/issue-related-events-section")
        .and_then(Value::as_str)
        .map(str::to_string);
    let secret = body
        .get("secret")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Definition {
        name: name.to_string(),
        url: url.to_string(),
        events,
        jql,
        secret,
    })
}

pub(super) fn register_from_body(shared: &Shared, body: &Value) -> Result<Value, &'static str> {
    let d = definition(body)?;
    let id = register(shared, &d.name, &d.url, d.events, d.jql, d.secret);
    let hooks = lock(&shared.webhooks);
    let hook = hooks
        .iter()
        .find(|h| h.id == id)
        .ok_or("lost the webhook")?;
    Ok(render(shared, hook))
}

/// Replace webhook `id`'s definition; `None` when there is no such webhook.
pub(super) fn update_from_body(
    shared: &Shared,
    id: u64,
    body: &Value,
) -> Result<Option<Value>, &'static str> {
    let d = definition(body)?;
    let cloud = shared.opts.deployment == Deployment::Cloud;
    let mut hooks = lock(&shared.webhooks);
    let Some(hook) = hooks.iter_mut().find(|h| h.id == id) else {
        return Ok(None);
    };
    hook.name = d.name;
    hook.url = d.url;
    hook.events = d.events;
    hook.jql = d.jql;
    hook.secret = d.secret.filter(|s| !s.is_empty() && cloud);
    Ok(Some(render(shared, hook)))
}

/// Every webhook, as Jira lists them (without their secrets).
pub(super) fn list(shared: &Shared) -> Value {
    let hooks = lock(&shared.webhooks);
    Value::Array(hooks.iter().map(|h| render(shared, h)).collect())
}

fn render(shared: &Shared, h: &Webhook) -> Value {
    json!({
        "self": lock(&shared.hostile).webhook_self.clone().unwrap_or_else(|| {
            format!("{}/rest/webhooks/1.0/webhook/{}", shared.base_url(), h.id)
        }),
        "name": h.name,
        "url": h.url,
        "events": h.events,
        "filters": {"issue-related-events-section": h.jql.clone().unwrap_or_default()},
        "excludeBody": false,
        "enabled": true,
    })
}
