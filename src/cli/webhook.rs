//! `webhook url` and `webhook register`: setting up Jira's side of `[webhook]`.

use crate::config::{Config, Deployment, WebhookConfig};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;

/// The name the webhook gets in Jira's admin page.
const NAME: &str = "jira-gitlab-reconciler";

/// The JQL filter that limits events to the mappings' issues: their filters, ORed.
pub fn jql_filter(cfg: &Config) -> String {
    let filters: Vec<String> = cfg
        .mappings
        .iter()
        .map(|m| format!("({})", m.search_filter(None)))
        .collect();
    filters.join(" OR ")
}

fn webhook(cfg: &Config) -> Result<&WebhookConfig> {
    cfg.webhook.as_ref().ok_or_else(|| {
        Error::Config(
            "the config has no [webhook] section: add one with listen (and public_url, the \
             address Jira reaches it at) first; see the README's \"Webhooks\""
                .into(),
        )
    })
}

/// Where Jira must post: `public_url` (a reverse proxy in front) or the listen address.
fn target(w: &WebhookConfig) -> String {
    let base = match &w.public_url {
        Some(url) => url.to_string(),
        None => format!("http://{}", w.listen),
    };
    format!("{base}{}", w.path)
}

/// Print what to paste into Jira's WebHooks admin page. The secret is never printed.
pub fn url(cfg: &Config) -> Result<i32> {
    let w = webhook(cfg)?;
    let url = target(w);
    println!("Jira → System → WebHooks → Create a WebHook:");
    match cfg.jira.deployment {
        Deployment::Cloud => {
            println!("  URL:    {url}");
            println!(
                "  Secret: the webhook secret (the contents of webhook.secret_file or $JIRA_WEBHOOK_SECRET)"
            );
        }
        Deployment::Datacenter => {
            println!("  URL:    {url}?secret=<the webhook secret>");
            println!(
                "          Data Center cannot sign events: the secret rides in the URL, so put TLS in front"
            );
        }
    }
    println!("  Events: Issue → created, updated, deleted");
    println!("  JQL:    {}", jql_filter(cfg));
    if w.public_url.is_none() {
        println!(
            "Jira must be able to reach {url}: set webhook.public_url to the address a reverse proxy serves it at"
        );
    }
    Ok(0)
}

/// Register the webhook through Jira's admin API (the account must be a Jira administrator).
pub async fn register(cfg: Config) -> Result<i32> {
    let w = webhook(&cfg)?.clone();
    let jql = jql_filter(&cfg);
    let deployment = cfg.jira.deployment;
    let r = Reconciler::new(cfg, std::sync::Arc::new(Metrics::new()))?;
    let (url, secret) = match deployment {
        Deployment::Cloud => (target(&w), Some(w.secret.expose())),
        Deployment::Datacenter => (
            format!(
                "{}?secret={}",
                target(&w),
                crate::http::percent_encode(w.secret.expose())
            ),
            None,
        ),
    };
    // Registering again (after adding a mapping, or by mistake) must not make Jira send each
    // event twice: a webhook that already posts to this address is updated instead.
    let existing = r.jira().webhooks().await?;
    let ours: Vec<_> = existing
        .iter()
        .filter(|h| without_query(&h.url) == target(&w))
        .collect();
    if ours.len() > 1 {
        tracing::warn!(
            count = ours.len(),
            "several Jira webhooks post to {}: each event arrives that many times; delete all \
             but {} on Jira's WebHooks admin page",
            target(&w),
            shown(&ours[0].link)
        );
    }
    match ours.first() {
        // A Cloud secret cannot be read back, so a webhook with one is always rewritten.
        Some(h) if h.url == url && h.filters.jql == jql && h.name == NAME && secret.is_none() => {
            println!("webhook already registered, unchanged: {}", shown(&h.link));
        }
        Some(h) => {
            r.jira()
                .register_webhook(Some(&h.link), NAME, &url, &jql, secret)
                .await?;
            println!("updated webhook {NAME}: {}", shown(&h.link));
        }
        None => {
            let created = r
                .jira()
                .register_webhook(None, NAME, &url, &jql, secret)
                .await?;
            let link = created
                .get("self")
                .and_then(|v| v.as_str())
                .unwrap_or("(Jira did not say where)");
            println!("registered webhook {NAME}: {}", shown(link));
        }
    }
    println!("  events for: {jql}");
    println!("  delivered to: {}", target(&w));
    Ok(0)
}

/// A link Jira gave, made safe for the terminal.
fn shown(link: &str) -> String {
    crate::safe_text::safe_within(link, 512)
}

/// A URL without its query (a Data Center webhook's carries the secret).
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}
