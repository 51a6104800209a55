//! What the status page shows, gathered from the configuration in use, a read-only connection
//! to the state database (a WAL reader: passes write on meanwhile) and the service's metrics.
//! No issue title, token or JQL is taken: a mapping shows as its Jira project key and GitLab
//! project, and an error text that would quote its `jql` (Jira's answer to a refused search
//! does) says what to do instead. Error texts are cut short.

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::domain::MappingId;
use crate::leadtime::{Figures, Window};
use crate::metrics::Metrics;
use crate::report::{Chart, DEFAULT_WEEKS};
use crate::store::{MappingStatus, PassRecord, Store};
use crate::webhook::Outcome;

/// An error text shown on the page is cut after this many characters (servers' messages can
/// be long; the fix is in their first lines).
const MAX_ERROR_CHARS: usize = 600;

pub(super) struct Model {
    pub now: DateTime<Utc>,
    pub started: DateTime<Utc>,
    /// Why the state database could not be read, if it could not.
    pub state_problem: Option<String>,
    pub next_incremental: Option<DateTime<Utc>>,
    pub next_full: Option<DateTime<Utc>>,
    pub mappings: Vec<MappingView>,
    pub webhook: Option<WebhookView>,
    pub lead_time: Option<LeadTime>,
}

pub(super) struct MappingView {
    pub name: String,
    pub id: MappingId,
    pub jira_project: String,
    pub jira_link: Option<String>,
    pub gitlab_project: String,
    pub gitlab_link: Option<String>,
    /// `None`: never reconciled (or no database yet).
    pub status: Option<MappingStatus>,
    /// The newest pass that has ended (`status` names the one running now, if any).
    pub last_finished: Option<PassRecord>,
    /// The last finished pass's error, cut short.
    pub last_error: Option<String>,
    /// What only a person can fix, one line each.
    pub attention: Vec<Attention>,
    /// The mapping's `jql`, never shown (see [`shown_error`]).
    pub jql: Option<String>,
}

/// Something that needs a person: what is wrong, and what to do about it.
pub(super) struct Attention {
    pub problem: &'static str,
    pub fix: String,
}

pub(super) struct WebhookView {
    pub path: String,
    /// Deliveries since start, by outcome (only those that happened).
    pub deliveries: Vec<(Outcome, u64)>,
    pub last_accepted: Option<DateTime<Utc>>,
    pub last_refused: Option<DateTime<Utc>>,
    /// Event-named issues carried to GitLab (all time), and when the last was.
    pub applied: Option<(u64, DateTime<Utc>)>,
}

pub(super) struct LeadTime {
    pub window: Window,
    pub figures: Vec<(String, Figures)>,
    pub chart: Chart,
}

/// Everything the page shows as of `now`.
pub(super) fn gather(
    cfg: &Config,
    metrics: &Metrics,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Model {
    let mut model = Model {
        now,
        started,
        state_problem: None,
        next_incremental: crate::schedule::next_tick(&cfg.schedule.reconcile, now),
        next_full: crate::schedule::next_tick(&cfg.schedule.full_resync, now),
        mappings: cfg.mappings.iter().map(|m| mapping(cfg, m)).collect(),
        webhook: None,
        lead_time: None,
    };
    let store = match Store::open_read_only(&cfg.state_path) {
        Ok(Some(store)) => Some(store),
        Ok(None) if cfg.state_path.exists() => {
            model.state_problem =
                Some("written by an older version; the next pass migrates it".into());
            None
        }
        Ok(None) => {
            model.state_problem = Some("no state database yet: no pass has finished".into());
            None
        }
        Err(e) => {
            model.state_problem = Some(cut(&e.report()));
            None
        }
    };
    if let Some(store) = &store {
        if let Err(e) = read_state(&mut model, cfg, store) {
            model.state_problem = Some(cut(&e.report()));
        }
    }
    for m in &mut model.mappings {
        m.attention = attention(metrics, m);
    }
    model.webhook = cfg
        .webhook
        .as_ref()
        .map(|w| webhook(&w.path, metrics, store.as_ref()));
    model
}

fn mapping(cfg: &Config, m: &crate::config::Mapping) -> MappingView {
    let gitlab = cfg.gitlab.url.trim_end_matches('/');
    let gitlab_link = if m.gitlab_project.bytes().all(|b| b.is_ascii_digit()) {
        format!("{gitlab}/projects/{}", m.gitlab_project)
    } else {
        format!("{gitlab}/{}", m.gitlab_project)
    };
    MappingView {
        name: m.name(),
        id: m.id(),
        jira_project: m.jira_project.clone(),
        jira_link: Some(format!(
            "{}/browse/{}",
            cfg.jira.url.trim_end_matches('/'),
            m.jira_project
        )),
        gitlab_project: m.gitlab_project.clone(),
        gitlab_link: Some(gitlab_link),
        status: None,
        last_finished: None,
        last_error: None,
        attention: Vec::new(),
        jql: m.jql.clone().filter(|q| !q.trim().is_empty()),
    }
}

/// Each mapping's pass history and the lead-time report, from the open database.
fn read_state(model: &mut Model, cfg: &Config, store: &Store) -> crate::error::Result<()> {
    for m in &mut model.mappings {
        m.status = Some(store.status(&m.id)?);
        m.last_finished = store.passes().last_finished(&m.id)?;
        m.last_error = m
            .last_finished
            .as_ref()
            .and_then(|p| p.error.as_deref())
            .map(|e| shown_error(e, m.jql.as_deref()));
    }
    let window = Window {
        since: model.now - Duration::weeks(DEFAULT_WEEKS),
        until: model.now,
    };
    let report = crate::report::figures_of(store, &cfg.mappings, window, None)?;
    model.lead_time = Some(LeadTime {
        window,
        chart: crate::report::chart(&report),
        figures: report
            .mappings
            .into_iter()
            .map(|m| (m.mapping, m.figures))
            .collect(),
    });
    Ok(())
}

/// What needs a person for this mapping. (More kinds of finding go here as lines of their own.)
fn attention(metrics: &Metrics, m: &MappingView) -> Vec<Attention> {
    let mut out = Vec::new();
    if metrics.get("jgr_needs_person", &[("mapping", &m.name)]) == Some(1.0) {
        out.push(Attention {
            problem: "The last pass failed on something only a person can fix; every pass fails \
                      the same way until then.",
            fix: m.last_error.clone().unwrap_or_else(|| {
                "See the service's log (journalctl -u jira-gitlab-reconciler -p err) for the error and its fix.".into()
            }),
        });
    }
    out
}

fn webhook(path: &str, metrics: &Metrics, store: Option<&Store>) -> WebhookView {
    let mut view = WebhookView {
        path: path.to_string(),
        deliveries: Vec::new(),
        last_accepted: None,
        last_refused: None,
        applied: store.and_then(|s| s.webhook_counts().read().ok().flatten()),
    };
    for outcome in Outcome::ALL {
        let labels = [("outcome", outcome.label())];
        // Counters start at zero: a count shows once something happened.
        match metrics.get("jgr_webhook_events_total", &labels) {
            Some(n) if n > 0.0 => view.deliveries.push((outcome, n as u64)),
            _ => {}
        }
        let at = metrics
            .get("jgr_webhook_last_delivery_timestamp_seconds", &labels)
            .and_then(|t| DateTime::from_timestamp(t as i64, 0));
        let last = if outcome.refused() {
            &mut view.last_refused
        } else {
            &mut view.last_accepted
        };
        *last = (*last).max(at);
    }
    view
}

/// A pass's error as the page shows it. A mapping's `jql` may name customers, people or
/// labels that the page's readers need not see: an error that quotes it, or Jira's answer to a
/// refused search (which quotes parts of it), is replaced by what to do and where the full
/// text is.
fn shown_error(text: &str, jql: Option<&str>) -> String {
    let refused_search = text.contains("/search") && text.contains("HTTP 400");
    match jql {
        Some(q) if refused_search || text.contains(q) => "Jira refused the mapping's search: \
            check its jql (not shown on this page; `jira-gitlab-reconciler status` on the server \
            and the service's log have Jira's message)"
            .into(),
        _ => cut(text),
    }
}

/// At most [`MAX_ERROR_CHARS`] characters, on one line.
fn cut(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((at, _)) => format!("{} … (cut; the full text is in the log)", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mapping whose `jql` Jira refused: its last error quotes the filter and Jira's
    /// message about it; the page shows neither, only what to do.
    #[test]
    fn the_page_never_shows_a_mappings_jql() {
        let dir = crate::test_dir("page-jql");
        let state = dir.join("state.db");
        let text = format!(
            "[jira]\nurl = \"https://acme.atlassian.net\"\nemail = \"bot@acme.com\"\n\n\
             [gitlab]\nurl = \"https://gitlab.example.com\"\n\n[state]\npath = \"{}\"\n\n\
             [[mapping]]\njira_project = \"VSA\"\ngitlab_project = \"acme/platform\"\n\
             jql = \"labels = customer-megacorp\"\n",
            state.display()
        );
        let tokens = |_: &str| Some("token".to_string());
        let cfg = Config::parse(&text, std::path::Path::new("t.toml"), &tokens).expect("config");
        let store = Store::open(&state).expect("store");
        let id = MappingId::from("VSA->acme/platform");
        let pass = store
            .passes()
            .begin(&id, crate::domain::PassKind::Full)
            .expect("begin");
        let error = "Jira POST /rest/api/3/search/jql: HTTP 400: The value 'customer-megacorp' \
            does not exist for the field 'labels'. (Jira refused the search `project = \"VSA\" AND \
            (labels = customer-megacorp)`: check the mapping's jql)";
        let counts = crate::domain::Counts::default();
        let failed = crate::domain::PassOutcome::Failed;
        store
            .passes()
            .finish(pass, failed, &counts, Some(error))
            .expect("finish");
        let model = gather(&cfg, &Metrics::new(), Utc::now(), Utc::now());
        let shown = model.mappings[0].last_error.clone().expect("an error");
        assert!(!shown.contains("megacorp"), "{shown}");
        assert!(shown.contains("check its jql"), "{shown}");
        // Other errors show as they are.
        assert_eq!(
            shown_error("GET /user: HTTP 401", Some("labels = x")),
            "GET /user: HTTP 401"
        );
    }

    #[test]
    fn error_texts_are_one_line_and_cut_short() {
        assert_eq!(cut("a\nb\u{1b}[31m"), "a b [31m");
        let long = "é".repeat(MAX_ERROR_CHARS + 5);
        let shown = cut(&long);
        assert!(shown.starts_with(&"é".repeat(MAX_ERROR_CHARS)));
        assert!(
            shown.ends_with("(cut; the full text is in the log)"),
            "{shown}"
        );
    }
}
