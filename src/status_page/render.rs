//! The page as HTML: a header, one card per mapping, the webhook, the lead-time report. Plain
//! markup and one inline style sheet ([`super::STYLE`]); no script, nothing from elsewhere.

use chrono::{DateTime, Utc};

use super::html::Html;
use super::model::{Attention, LeadTime, MappingView, Model, WebhookView};
use crate::domain::Counts;
use crate::domain::PassOutcome;
use crate::report::human;
use crate::store::PassRecord;
use crate::webhook::Outcome;

pub(super) fn page(m: &Model) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"color-scheme\" content=\"light dark\">")
        .raw("<title>jira-gitlab-reconciler status</title><style>")
        .raw(super::STYLE)
        .raw("</style></head><body><header><h1>jira-gitlab-reconciler</h1><p class=\"muted\">")
        .text(&format!(
            "version {} · running since {} · as of {}",
            env!("CARGO_PKG_VERSION"),
            when(m.started),
            when(m.now)
        ))
        .raw("</p></header><main>");
    summary(&mut h, m);
    for mapping in &m.mappings {
        mapping_card(&mut h, m, mapping);
    }
    if let Some(w) = &m.webhook {
        webhook(&mut h, m.now, w);
    }
    if let Some(lead) = &m.lead_time {
        lead_time(&mut h, lead);
    }
    h.raw("</main><footer><p class=\"muted\">")
        .link("/metrics", "/metrics")
        .raw(" (Prometheus) · ")
        .link("/healthz", "/healthz")
        .raw(" · <code>jira-gitlab-reconciler status</code> and <code>report</code> on the server show the same</p></footer></body></html>\n");
    h.finish()
}

/// One line on top: all well, or how many mappings want attention.
fn summary(h: &mut Html, m: &Model) {
    let attention = m
        .mappings
        .iter()
        .filter(|v| !v.attention.is_empty())
        .count();
    let failing = m
        .mappings
        .iter()
        .filter(|v| last_pass(v).is_some_and(|p| p.outcome != PassOutcome::Ok))
        .count();
    let of_all = |h: &mut Html, n: usize, what: &'static str| {
        h.num(n as u64)
            .raw(" of ")
            .num(m.mappings.len() as u64)
            .raw(what);
    };
    h.raw("<p class=\"summary ");
    if let Some(problem) = &m.state_problem {
        h.raw("bad\">State database: ").text(problem);
    } else if attention > 0 {
        h.raw("bad\">");
        of_all(h, attention, " mapping(s) need a person: see below.");
    } else if failing > 0 {
        h.raw("warn\">");
        of_all(
            h,
            failing,
            " mapping(s): the last pass did not succeed; the next pass retries.",
        );
    } else {
        h.raw("ok\">Every mapping's last pass succeeded.");
    }
    h.raw("</p>");
}

fn last_pass(v: &MappingView) -> Option<&PassRecord> {
    v.last_finished.as_ref()
}

/// The pass running now, if any.
fn running(v: &MappingView) -> Option<&PassRecord> {
    v.status
        .as_ref()?
        .last_pass
        .as_ref()
        .filter(|p| p.outcome == PassOutcome::Running)
}

fn mapping_card(h: &mut Html, m: &Model, v: &MappingView) {
    h.raw("<section class=\"mapping\"><h2>");
    link_or_text(h, v.jira_link.as_deref(), &v.jira_project);
    h.raw(" → ");
    link_or_text(h, v.gitlab_link.as_deref(), &v.gitlab_project);
    h.raw("</h2><p class=\"muted name\">mapping ")
        .text(&v.name)
        .raw("</p>");
    for a in &v.attention {
        attention(h, a);
    }
    h.raw("<dl>");
    match &v.status {
        None => {
            h.raw("<dt>Mirrors</dt><dd>none yet: never reconciled</dd>");
        }
        Some(st) => {
            h.raw("<dt>Mirrors</dt><dd>").num(st.mirrors);
            if st.pending_intents > 0 {
                h.raw(" (")
                    .num(st.pending_intents)
                    .raw(" create(s) to confirm by marker on the next pass)");
            }
            h.raw("</dd>");
            if let Some(p) = running(v) {
                h.raw("<dt>Now</dt><dd><span class=\"warn\">running</span> · ")
                    .text(&format!(
                        "a {} pass, started {}",
                        p.kind,
                        ago(m.now, p.started_at)
                    ))
                    .raw("</dd>");
            }
            pass_rows(h, m.now, last_pass(v), st.last_success.as_ref());
        }
    }
    if let Some(err) = v.last_error.as_deref().filter(|_| v.attention.is_empty()) {
        h.raw("<dt>Last error</dt><dd>").text(err).raw("</dd>");
    }
    h.raw("<dt>Next pass</dt><dd>");
    next_passes(h, m);
    h.raw("</dd></dl></section>");
}

fn link_or_text(h: &mut Html, href: Option<&str>, label: &str) {
    match href {
        Some(href) => h.link(href, label),
        None => h.text(label),
    };
}

fn attention(h: &mut Html, a: &Attention) {
    h.raw("<div class=\"attention\"><strong>Needs a person.</strong> ")
        .text(a.problem)
        .raw("<br>")
        .text(&a.fix)
        .raw("</div>");
}

/// The last pass (kind, when, how long, outcome, what it did) and the last successful one.
fn pass_rows(
    h: &mut Html,
    now: DateTime<Utc>,
    last: Option<&PassRecord>,
    success: Option<&PassRecord>,
) {
    h.raw("<dt>Last pass</dt><dd>");
    let Some(p) = last else {
        h.raw("none yet</dd>");
        return;
    };
    h.raw("<span class=\"")
        .raw(outcome_class(p.outcome))
        .raw("\">")
        .text(p.outcome.label())
        .raw("</span> · ")
        .text(p.kind.label())
        .raw(" · ")
        .text(&format!(
            "{} ({})",
            when(p.started_at),
            ago(now, p.started_at)
        ));
    if let Some(end) = p.finished_at {
        h.text(&format!(" · took {}", took(end - p.started_at)));
    }
    h.raw("</dd><dt>It did</dt><dd>")
        .text(&did(&p.counts))
        .raw("</dd>");
    if p.outcome != PassOutcome::Ok {
        h.raw("<dt>Last success</dt><dd>");
        match success {
            Some(s) => h.text(&format!(
                "{} ({})",
                when(s.started_at),
                ago(now, s.started_at)
            )),
            None => h.raw("none yet"),
        };
        h.raw("</dd>");
    }
}

fn outcome_class(outcome: PassOutcome) -> &'static str {
    match outcome {
        PassOutcome::Ok => "ok",
        PassOutcome::Running | PassOutcome::Stopped => "warn",
        PassOutcome::Failed | PassOutcome::Interrupted => "bad",
    }
}

fn did(c: &Counts) -> String {
    let parts: Vec<String> = [
        ("created", c.created),
        ("closed", c.closed),
        ("reopened", c.reopened),
        ("updated", c.updated),
        ("adopted", c.adopted),
        ("failed", c.failed),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect();
    let read = format!(
        "{} Jira issue(s) read, {} unchanged",
        c.jira_seen, c.unchanged
    );
    if parts.is_empty() {
        format!("nothing to change; {read}")
    } else {
        format!("{}; {read}", parts.join(", "))
    }
}

fn next_passes(h: &mut Html, m: &Model) {
    match m.next_incremental {
        Some(t) => h.text(&format!("{} ({})", when(t), until(m.now, t))),
        None => h.raw("not scheduled"),
    };
    if let Some(t) = m.next_full {
        h.text(&format!("; full resync {}", when(t)));
    }
}

fn webhook(h: &mut Html, now: DateTime<Utc>, w: &WebhookView) {
    h.raw("<section class=\"webhook\"><h2>Jira webhook</h2><dl><dt>Path</dt><dd><code>")
        .text(&w.path)
        .raw("</code></dd><dt>Last event</dt><dd>");
    match w.last_accepted {
        Some(t) => h.text(&format!("{} ({})", when(t), ago(now, t))),
        None => h.raw("none since start"),
    };
    h.raw("</dd><dt>Since start</dt><dd>");
    let accepted: Vec<String> = w
        .deliveries
        .iter()
        .filter(|(o, _)| !o.refused())
        .map(|(o, n)| format!("{} {n}", o.label()))
        .collect();
    h.text(&if accepted.is_empty() {
        "no event accepted".to_string()
    } else {
        format!("accepted: {}", accepted.join(", "))
    });
    h.raw("</dd><dt>Refused</dt><dd>");
    refused(h, now, w);
    h.raw("</dd><dt>Carried to GitLab</dt><dd>");
    match w.applied {
        Some((n, t)) => h.text(&format!("{n} issue(s) in all; the last {}", ago(now, t))),
        None => h.raw("none yet"),
    };
    h.raw("</dd></dl></section>");
}

fn refused(h: &mut Html, now: DateTime<Utc>, w: &WebhookView) {
    let refused: Vec<String> = w
        .deliveries
        .iter()
        .filter(|(o, _)| o.refused())
        .map(|(o, n)| format!("{} {n}", o.label()))
        .collect();
    if refused.is_empty() {
        h.raw("none since start");
        return;
    }
    h.raw("<span class=\"bad\">")
        .text(&refused.join(", "))
        .raw("</span>");
    if let Some(t) = w.last_refused {
        h.text(&format!(", the last {}", ago(now, t)));
    }
    h.raw(".");
    if w.deliveries
        .iter()
        .any(|(o, n)| *o == Outcome::Unauthorized && *n > 0)
    {
        h.raw(
            " Unauthorized: the secret of Jira's webhook differs from webhook.secret (run \
               <code>jira-gitlab-reconciler webhook register</code> again), or someone is probing.",
        );
    }
}

fn lead_time(h: &mut Html, lead: &LeadTime) {
    h.raw("<section class=\"lead-time\"><h2>Lead time</h2><p class=\"muted\">")
        .text(&format!(
            "Jira created → done, {} … {} UTC (the last 12 weeks): median and 85th percentile \
             (p85) of the issues closed, as ",
            lead.window.since.format("%Y-%m-%d %H:%M"),
            lead.window.until.format("%Y-%m-%d %H:%M")
        ))
        .raw("<code>jira-gitlab-reconciler report</code> computes it.</p>")
        .raw("<div class=\"scroll\"><table><thead><tr><th>mapping</th><th>closed</th>")
        .raw("<th>created</th><th>median</th><th>p85</th></tr></thead><tbody>");
    for (mapping, f) in &lead.figures {
        let opt = |s: Option<f64>| s.map_or_else(|| "-".to_string(), human);
        h.raw("<tr><td>")
            .text(mapping)
            .raw("</td><td>")
            .num(f.closed)
            .raw("</td><td>")
            .num(f.created)
            .raw("</td><td>")
            .text(&opt(f.lead_time_median_s))
            .raw("</td><td>")
            .text(&opt(f.lead_time_p85_s))
            .raw("</td></tr>");
    }
    h.raw("</tbody></table></div>")
        .raw("<p class=\"muted narrow\">The chart shows its newest weeks; scroll it sideways for older ones.</p>")
        .raw("<div class=\"scroll chart\">")
        .chart(&lead.chart)
        .raw("</div></section>");
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("{} ago", span((now - t).num_seconds()))
}

fn until(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("in {}", span((t - now).num_seconds()))
}

fn took(d: chrono::Duration) -> String {
    format!("{:.1} s", d.num_milliseconds().max(0) as f64 / 1000.0)
}

/// "42 s", "5 min", "3.0 h", "2.5 d".
fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 120 {
        format!("{s} s")
    } else {
        human(s as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PassKind;
    use crate::leadtime::{Figures, Window};
    use crate::report::{MappingFigures, Report};
    use crate::store::MappingStatus;
    use chrono::TimeZone;

    const EVIL: &str = "<script>alert('x')</script>\"&";

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 5, h, 0, 0)
            .single()
            .expect("a valid time")
    }

    /// A failed pass whose error is hostile.
    fn failed_pass() -> PassRecord {
        PassRecord {
            kind: PassKind::Full,
            started_at: t(9),
            finished_at: Some(t(10)),
            outcome: PassOutcome::Failed,
            counts: Counts {
                created: 2,
                ..Counts::default()
            },
            error: Some(EVIL.into()),
        }
    }

    /// A page where every value that comes from outside is hostile.
    fn hostile() -> Model {
        let pass = failed_pass();
        let name = format!("VSA->{EVIL}");
        let window = Window {
            since: t(0),
            until: t(12),
        };
        let report = Report {
            window,
            mappings: vec![MappingFigures {
                mapping: name.clone(),
                figures: Figures::default(),
            }],
        };
        Model {
            now: t(11),
            started: t(8),
            state_problem: None,
            next_incremental: Some(t(12)),
            next_full: None,
            mappings: vec![MappingView {
                name: name.clone(),
                id: name.as_str().into(),
                jira_project: "VSA".into(),
                jira_link: Some(format!("javascript:{EVIL}")),
                gitlab_project: EVIL.into(),
                gitlab_link: Some(format!("https://gitlab.example.com/{EVIL}")),
                status: Some(MappingStatus {
                    checkpoint: None,
                    mirrors: 3,
                    pending_intents: 0,
                    last_pass: Some(pass.clone()),
                    last_success: None,
                }),
                last_finished: Some(pass),
                last_error: Some(EVIL.into()),
                attention: vec![Attention {
                    problem: "The last pass failed.",
                    fix: EVIL.into(),
                }],
                jql: None,
            }],
            webhook: Some(WebhookView {
                path: EVIL.into(),
                deliveries: vec![(Outcome::Queued, 1), (Outcome::Unauthorized, 2)],
                last_accepted: Some(t(10)),
                last_refused: Some(t(10)),
                applied: Some((1, t(10))),
            }),
            lead_time: Some(LeadTime {
                window,
                chart: crate::report::chart(&report),
                figures: vec![(name, Figures::default())],
            }),
        }
    }

    #[test]
    fn values_from_outside_reach_the_page_only_as_text() {
        let html = page(&hostile());
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
        // Escaped, they show: the name in the card, the table and the chart; the project in
        // its link and as the link's text; the error; the webhook's path.
        let shown = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;";
        assert!(html.matches(shown).count() >= 6, "{html}");
        assert!(
            html.contains("href=\"https://gitlab.example.com/&lt;script&gt;"),
            "{html}"
        );
        assert!(html.contains("Needs a person."), "{html}");
        assert!(html.contains("unauthorized 2"), "{html}");
        assert!(html.contains("created 2"), "{html}");
        assert!(html.contains("<svg "), "the chart is inline: {html}");
    }
}
