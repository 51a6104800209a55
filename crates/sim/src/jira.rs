//! A stateful fake Jira (Cloud or Data Center) on 127.0.0.1.
//!
//! Tests and `demo` drive it through [`FakeJira`]'s methods and point the reconciler at
//! [`FakeJira::url`]. It reproduces what breaks sync tools: Cloud's token paging and removed
//! `/search`, Data Center's `startAt` paging, an eventually consistent search index
//! (`index_lag`), JQL dates read in the account's zone at minute precision, odd page caps,
//! and scripted faults.
//!
//! # People, planning fields, versions, sprints, boards and workflows
//!
//! Each module's docs state the Jira rules it follows; in short:
//! - **People** (`jira/people.rs`): [`FakeJira::add_user`] (e-mail shown or hidden),
//!   `set_user_active`; `GET /rest/api/{v}/user?accountId=` (Cloud) / `?username=|key=` (DC).
//!   Cloud users have `accountId` and no `name`/`key`; a hidden e-mail is left out.
//! - **Issue fields** (`jira/fields.rs`): `assignee`, `components`, `priority` (Medium on new
//!   issues), `duedate`, `fixVersions` and the sprint field, returned only when named in
//!   `fields=` (or `*all`). Set with `set_assignee`, `set_components`, `set_priority`,
//!   `set_due_date`, `set_fix_versions`, `set_sprints` (each an edit: `updated` moves, the
//!   changelog records it). `GET /rest/api/{v}/field` lists the sprint field with
//!   `schema.custom = com.pyxis.greenhopper.jira:gh-sprint` (`customfield_10020`; move it with
//!   `set_sprint_field_id`, add look-alikes with `add_custom_field`).
//! - **Versions and components** (`jira/versions.rs`): `add_version`, `release_version`,
//!   `archive_version`, `versions`; `GET .../project/{key}/versions`, `.../version` (paged),
//!   `/version/{id}`, `.../project/{key}/components`. Releasing edits no issue.
//! - **Sprints and boards** (`jira/agile.rs`): `add_board` (columns in order), `add_sprint`,
//!   `start_sprint`, `close_sprint` (optionally carrying open issues over — an edit; the rest
//!   are not touched), `set_sprint_goal`, `set_sprint_strings` (DC string style);
//!   `/rest/agile/1.0/board[?projectKeyOrId=]`, `/board/{id}[/configuration|/sprint]`,
//!   `/sprint/{id}`. The sprint field is objects on Cloud, `Sprint@…[…]` strings on DC.
//! - **Workflows** (`jira/workflow.rs`): `set_workflow`, `set_issue_type_workflow`;
//!   `GET .../project/{key}/statuses` per issue type, ordered by status id (not workflow
//!   order); `/workflow/search` is 403 unless the account is an administrator.
//! - **JQL** (`jira/jql/plan.rs`): `assignee`, `component`, `priority`, `duedate`,
//!   `fixVersion`, `sprint` with `=`, `!=`, `in`, `not in`, `is [not] empty` (and date
//!   comparisons on `duedate`); no functions such as `openSprints()`.

mod agile;
mod fields;
mod hostile;
mod http;
mod jql;
mod people;
mod planning;
mod render;
#[cfg(test)]
mod tests;
mod versions;
mod webhooks;
mod workflow;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use crate::{lock, Fault, FaultPlan, Route, ServerHandle, SimClock};

pub use agile::{SprintState, SprintStrings};
pub use hostile::{DateHeader, Hostile, PageTrap};
pub use people::JiraUser;
pub use versions::VersionSnapshot;
pub use webhooks::{Delivery, Webhook};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    Cloud,
    DataCenter,
}

#[derive(Clone)]
pub struct JiraOptions {
    pub deployment: Deployment,
    /// Cloud Basic-auth user.
    pub email: String,
    /// Cloud API token, or Data Center personal access token.
    pub token: String,
    /// Zone name reported by `/myself`.
    pub time_zone: String,
    /// The account's zone: JQL date literals are read in it and timestamps are formatted in it.
    pub utc_offset: FixedOffset,
    /// Search sees a write only this long (sim clock) after it happened.
    pub index_lag: Duration,
    /// Most issues per search page, whatever `maxResults` says.
    pub page_cap: usize,
    /// Every request is answered after a random delay in this range (a real server's latency).
    pub latency: Option<(std::time::Duration, std::time::Duration)>,
    /// Keep a search's sorted result between its pages while nothing is written (only without
    /// index lag): a 100,000-issue benchmark would otherwise sort the project for every page.
    pub cache_searches: bool,
    /// The account is a Jira administrator (may register webhooks).
    pub admin: bool,
    pub clock: SimClock,
    /// 0 = any free port.
    pub port: u16,
}

impl Default for JiraOptions {
    fn default() -> Self {
        JiraOptions {
            deployment: Deployment::Cloud,
            email: "bot@example.com".to_string(),
            token: "jira-token".to_string(),
            time_zone: "UTC".to_string(),
            utc_offset: FixedOffset::east_opt(0).expect("zero offset is valid"),
            index_lag: Duration::ZERO,
            // Odd on purpose: clients must not assume round page sizes.
            page_cap: 37,
            latency: None,
            cache_searches: false,
            admin: false,
            clock: SimClock::default(),
            port: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRef {
    pub id: String,
    pub key: String,
}

#[derive(Clone, Debug)]
pub struct IssueSnapshot {
    pub id: String,
    pub key: String,
    pub project: String,
    pub summary: String,
    pub status: String,
    pub category: String,
    pub issue_type: String,
    pub labels: Vec<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// Model

/// One version of an issue's fields.
#[derive(Clone, Debug)]
struct IssueData {
    key: String,
    project: String,
    summary: String,
    status: String,
    category: String,
    issue_type: String,
    labels: Vec<String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
    /// `set_field_raw` overrides, applied last when rendering.
    raw: BTreeMap<String, Value>,
    /// Assignee, components, priority, due date, fix versions, sprints (see `jira/fields.rs`).
    plan: fields::IssuePlan,
}

/// One changed field of a changelog entry, as Jira reports it.
#[derive(Clone, Debug)]
struct ChangeItem {
    field: &'static str,
    from: Option<String>,
    from_string: Option<String>,
    to: Option<String>,
    to_string: Option<String>,
}

/// One changelog entry ("history"): the fields one edit changed.
#[derive(Clone, Debug)]
struct History {
    id: u64,
    created: DateTime<Utc>,
    items: Vec<ChangeItem>,
}

#[derive(Clone, Debug)]
struct Version {
    written: DateTime<Utc>,
    /// `None` records a deletion.
    data: Option<IssueData>,
}

/// Every version of one issue, so search can serve an index that lags behind the database.
#[derive(Clone, Debug, Default)]
struct Record {
    versions: Vec<Version>,
    /// Keys the issue had before moves: Jira still resolves them.
    old_keys: Vec<String>,
    /// Status, summary and resolution changes, oldest first.
    changelog: Vec<History>,
    /// The account lost permission to see it: every API answers as if it did not exist.
    hidden: bool,
}

impl Record {
    fn latest(&self) -> Option<&IssueData> {
        if self.hidden {
            return None;
        }
        self.versions.last().and_then(|v| v.data.as_ref())
    }

    /// The newest version written at or before `horizon`, unless that version is a deletion.
    fn as_of(&self, horizon: DateTime<Utc>) -> Option<&IssueData> {
        if self.hidden {
            return None;
        }
        self.versions
            .iter()
            .rev()
            .find(|v| v.written <= horizon)
            .and_then(|v| v.data.as_ref())
    }
}

#[derive(Clone, Debug)]
struct Project {
    id: u64,
    key: String,
    name: String,
    /// Number of the last issue key handed out in this project.
    last_num: u64,
}

/// Everything behind the mutex.
#[derive(Default)]
struct State {
    projects: Vec<Project>,
    issues: BTreeMap<u64, Record>,
    last_id: u64,
    /// Status and issue type names ever used: JQL rejects other values, as Jira does.
    statuses: Vec<String>,
    issue_types: Vec<String>,
    last_history_id: u64,
    /// Visibility changes (hide, unhide): they change search results without a new version.
    visibility_changes: u64,
    /// People, versions, components, sprints, boards, workflows (issue 17's additions).
    planning: planning::Planning,
}

/// The first issue id is `FIRST_ISSUE_ID + 1`.
const FIRST_ISSUE_ID: u64 = 10000;
const FIRST_PROJECT_ID: u64 = 10000;

impl State {
    /// Grows with every write (a new issue, a new version): a search cached at one generation
    /// is stale at the next.
    fn generation(&self) -> u64 {
        self.issues
            .values()
            .map(|r| r.versions.len() as u64 + 1)
            .sum::<u64>()
            + self.visibility_changes
    }

    fn new() -> Self {
        State {
            last_id: FIRST_ISSUE_ID,
            statuses: ["To Do", "In Progress", "Done"].map(String::from).to_vec(),
            issue_types: ["Task", "Bug", "Story", "Epic", "Subtask"]
                .map(String::from)
                .to_vec(),
            last_history_id: 70_000,
            ..State::default()
        }
    }

    fn project(&self, key: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
    }

    /// Finds an issue by numeric id, current key or former key (deleted issues excluded).
    fn find(&self, key_or_id: &str) -> Option<u64> {
        if let Ok(id) = key_or_id.parse::<u64>() {
            return self.issues.get(&id).and_then(Record::latest).map(|_| id);
        }
        self.issues.iter().find_map(|(id, r)| {
            let data = r.latest()?;
            let hit = data.key.eq_ignore_ascii_case(key_or_id)
                || r.old_keys.iter().any(|k| k.eq_ignore_ascii_case(key_or_id));
            hit.then_some(*id)
        })
    }

    fn remember(list: &mut Vec<String>, name: &str) {
        if !list.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            list.push(name.to_string());
        }
    }
}

impl jql::Catalog for State {
    fn project_key(&self, value: &str) -> Option<String> {
        self.projects
            .iter()
            .find(|p| {
                p.key.eq_ignore_ascii_case(value)
                    || p.name.eq_ignore_ascii_case(value)
                    || p.id.to_string() == value
            })
            .map(|p| p.key.clone())
    }
    fn status_exists(&self, name: &str) -> bool {
        self.statuses.iter().any(|s| s.eq_ignore_ascii_case(name))
    }
    fn issue_type_exists(&self, name: &str) -> bool {
        self.issue_types
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    }
    fn key_exists(&self, key: &str) -> bool {
        self.find(key).is_some()
    }
    fn id_exists(&self, id: u64) -> bool {
        self.issues.get(&id).and_then(Record::latest).is_some()
    }
    fn user_number(&self, value: &str) -> Option<u64> {
        self.planning.user_by_any(value).map(|u| u.number)
    }
    fn component_exists(&self, name: &str) -> bool {
        self.planning.component_exists(name)
    }
    fn priority_exists(&self, name: &str) -> bool {
        fields::priority_exists(self, name)
    }
    fn version_ids(&self, value: &str) -> Vec<u64> {
        self.planning.version_ids(value)
    }
    fn sprint_ids(&self, value: &str) -> Vec<u64> {
        self.planning.sprint_ids(value)
    }
}

/// State shared between the handle and the HTTP handlers.
struct Shared {
    opts: JiraOptions,
    /// For `latency`.
    rng: Mutex<crate::Xorshift>,
    /// With `cache_searches`: (JQL, state generation) → issue ids in result order.
    search_cache: Mutex<Option<(String, u64, Vec<u64>)>>,
    /// Set once the listener is bound (the port may be chosen by the OS).
    base_url: OnceLock<String>,
    state: Mutex<State>,
    faults: Mutex<FaultPlan>,
    searches: AtomicUsize,
    requests: AtomicUsize,
    webhooks: Mutex<Vec<Webhook>>,
    deliveries: Mutex<Vec<Delivery>>,
    webhooks_paused: Mutex<bool>,
    /// For delivering webhooks.
    http: reqwest::Client,
    /// Changelog and by-id requests (Cloud bulk fetches; DC searches are `searches`).
    bulk_reads: AtomicUsize,
    /// `GET /project/{key}/versions` requests.
    pub(crate) version_lists: AtomicUsize,
    /// Misbehaviour switched on by a test.
    hostile: Mutex<Hostile>,
    /// Makes every never-ending page token new.
    nonce: std::sync::atomic::AtomicU64,
    /// Bytes of huge answers handed to connections ([`Fault::Huge`]).
    streamed: Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or("")
    }
}

// ---------------------------------------------------------------------------------------------
// Public handle

/// A running fake Jira. Dropping it stops the server.
pub struct FakeJira {
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl FakeJira {
    pub async fn start(opts: JiraOptions) -> std::io::Result<FakeJira> {
        let port = opts.port;
        let shared = Arc::new(Shared {
            opts,
            rng: Mutex::new(crate::Xorshift::new(0x6a69_7261)),
            search_cache: Mutex::new(None),
            base_url: OnceLock::new(),
            state: Mutex::new(State::new()),
            faults: Mutex::new(FaultPlan::default()),
            searches: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            webhooks: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            webhooks_paused: Mutex::new(false),
            http: reqwest::Client::new(),
            bulk_reads: AtomicUsize::new(0),
            version_lists: AtomicUsize::new(0),
            hostile: Mutex::new(Hostile::default()),
            nonce: std::sync::atomic::AtomicU64::new(0),
            streamed: Arc::default(),
        });
        lock(&shared.state).planning.data_center = shared.opts.deployment == Deployment::DataCenter;
        let server = crate::serve(http::router(shared.clone()), port).await?;
        let _ = shared.base_url.set(server.url());
        Ok(FakeJira { shared, server })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn clock(&self) -> SimClock {
        self.shared.opts.clock.clone()
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.opts.clock.now()
    }

    /// Creates a project; ids are "10001", "10002", ... Adding an existing key does nothing.
    pub fn add_project(&self, key: &str) {
        let mut st = lock(&self.shared.state);
        if st.project(key).is_some() {
            return;
        }
        let id = FIRST_PROJECT_ID + st.projects.len() as u64 + 1;
        st.projects.push(Project {
            id,
            key: key.to_string(),
            name: format!("Project {key}"),
            last_num: 0,
        });
    }

    /// Creates an issue in status "To Do" (category "new").
    ///
    /// # Panics
    /// If the project does not exist: a test bug, not a server condition.
    pub fn create_issue(&self, project: &str, summary: &str, issue_type: &str) -> IssueRef {
        let now = self.now();
        let mut st = lock(&self.shared.state);
        let key = next_key(&mut st, project);
        st.last_id += 1;
        let id = st.last_id;
        State::remember(&mut st.issue_types, issue_type);
        let data = IssueData {
            project: project_key_of(&key),
            key: key.clone(),
            summary: summary.to_string(),
            status: "To Do".to_string(),
            category: "new".to_string(),
            issue_type: issue_type.to_string(),
            labels: Vec::new(),
            created: now,
            updated: now,
            resolved: None,
            raw: BTreeMap::new(),
            plan: fields::IssuePlan::new(),
        };
        st.issues.insert(
            id,
            Record {
                versions: vec![Version {
                    written: now,
                    data: Some(data),
                }],
                old_keys: Vec::new(),
                changelog: Vec::new(),
                hidden: false,
            },
        );
        webhooks::announce(&self.shared, &st, id, "jira:issue_created");
        IssueRef {
            id: id.to_string(),
            key,
        }
    }

    pub fn rename(&self, key_or_id: &str, summary: &str) {
        self.mutate(key_or_id, |_, d| d.summary = summary.to_string());
    }

    /// Moves the issue to `status` in `category`. Entering a done category sets the resolution
    /// date; leaving it clears it.
    pub fn transition(&self, key_or_id: &str, status: &str, category: &str) {
        let now = self.now();
        State::remember(&mut lock(&self.shared.state).statuses, status);
        self.mutate(key_or_id, |_, d| {
            let was_done = d.category == "done";
            let is_done = category == "done";
            d.status = status.to_string();
            d.category = category.to_string();
            if is_done && !was_done {
                d.resolved = Some(now);
            } else if !is_done {
                d.resolved = None;
            }
        });
    }

    pub fn set_issue_type(&self, key_or_id: &str, issue_type: &str) {
        State::remember(&mut lock(&self.shared.state).issue_types, issue_type);
        self.mutate(key_or_id, |_, d| d.issue_type = issue_type.to_string());
    }

    pub fn set_labels(&self, key_or_id: &str, labels: &[&str]) {
        self.mutate(key_or_id, |_, d| {
            d.labels = labels.iter().map(|l| l.to_string()).collect();
        });
    }

    /// Moves the issue to another project: same id, new key; the old key still resolves.
    pub fn move_issue(&self, key_or_id: &str, to_project: &str) -> IssueRef {
        let mut new_key = String::new();
        let id = self.mutate(key_or_id, |st, d| {
            new_key = next_key(st, to_project);
            d.project = project_key_of(&new_key);
            d.key = new_key.clone();
        });
        IssueRef {
            id: id.to_string(),
            key: new_key,
        }
    }

    /// The account loses permission to see the issue: search, bulk fetch, issue and
    /// changelog requests all answer as if it did not exist.
    pub fn hide_issue(&self, key_or_id: &str) {
        let mut st = lock(&self.shared.state);
        let id = expect_issue(&st, key_or_id);
        if let Some(r) = st.issues.get_mut(&id) {
            r.hidden = true;
        }
        st.visibility_changes += 1;
    }

    /// Permission is given back (by numeric id, since a hidden issue has no visible key).
    pub fn unhide_issue(&self, id: &str) {
        let mut st = lock(&self.shared.state);
        if let Some(r) = id.parse().ok().and_then(|id: u64| st.issues.get_mut(&id)) {
            r.hidden = false;
        }
        st.visibility_changes += 1;
    }

    /// Brings a deleted issue back as it was (a restore from backup): same id, key, fields
    /// and `updated`, so only a complete search finds it again.
    ///
    /// # Panics
    /// If the id never existed or the issue is not deleted.
    pub fn restore_issue(&self, id: &str) {
        let now = self.now();
        let mut st = lock(&self.shared.state);
        let record = id
            .parse()
            .ok()
            .and_then(|id: u64| st.issues.get_mut(&id))
            .unwrap_or_else(|| panic!("fake Jira never had issue {id}"));
        assert!(record.latest().is_none(), "issue {id} is not deleted");
        let data = record
            .versions
            .iter()
            .rev()
            .find_map(|v| v.data.clone())
            .unwrap_or_else(|| panic!("issue {id} has no earlier version"));
        record.versions.push(Version {
            written: now,
            data: Some(data),
        });
    }

    pub fn delete_issue(&self, key_or_id: &str) {
        let now = self.now();
        let mut st = lock(&self.shared.state);
        let id = expect_issue(&st, key_or_id);
        if let Some(r) = st.issues.get_mut(&id) {
            r.versions.push(Version {
                written: now,
                data: None,
            });
        }
        webhooks::announce(&self.shared, &st, id, "jira:issue_deleted");
    }

    /// The latest state (not index-lagged).
    pub fn issue(&self, key_or_id: &str) -> Option<IssueSnapshot> {
        let st = lock(&self.shared.state);
        let id = st.find(key_or_id)?;
        st.issues.get(&id)?.latest().map(|d| snapshot(id, d))
    }

    /// All live issues, ordered by numeric id.
    pub fn issues(&self) -> Vec<IssueSnapshot> {
        let st = lock(&self.shared.state);
        st.issues
            .iter()
            .filter_map(|(id, r)| r.latest().map(|d| snapshot(*id, d)))
            .collect()
    }

    pub fn inject(&self, route: Route, fault: Fault, times: usize) {
        lock(&self.shared.faults).push(route, fault, times);
    }

    pub fn random_faults(&self, seed: u64, rate: f64, faults: Vec<Fault>) {
        lock(&self.shared.faults).random(seed, rate, faults);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Misbehave from now on as `hostile` says (page chains, the server's clock).
    pub fn set_hostile(&self, hostile: Hostile) {
        *lock(&self.shared.hostile) = hostile;
    }

    /// Bytes of huge answers ([`Fault::Huge`]) handed to connections so far, and of padded
    /// search pages ([`Hostile::padding_per_issue`]).
    pub fn streamed_bytes(&self) -> u64 {
        self.shared.streamed.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.connections()
    }

    /// Give the issue's latest version this `updated` as is, without an edit (data imported
    /// with timestamps from elsewhere, possibly in the future). Search sees it at once.
    pub fn set_updated(&self, key_or_id: &str, at: DateTime<Utc>) {
        let mut st = lock(&self.shared.state);
        let id = expect_issue(&st, key_or_id);
        if let Some(v) = st.issues.get_mut(&id).and_then(|r| r.versions.last_mut()) {
            if let Some(d) = v.data.as_mut() {
                d.updated = at;
            }
            v.written = v.written.min(self.now());
        }
    }

    /// How many API calls were answered (searches, counts, look-ups), whatever their status.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many search calls were answered, whatever their status.
    pub fn search_requests(&self) -> usize {
        self.shared.searches.load(Ordering::SeqCst)
    }

    /// How many times a project's versions were listed (`/project/{key}/versions`).
    pub fn version_list_requests(&self) -> usize {
        self.shared.version_lists.load(Ordering::SeqCst)
    }

    /// How many issue and changelog bulk fetches (Cloud) were answered, whatever their status.
    pub fn bulk_requests(&self) -> usize {
        self.shared.bulk_reads.load(Ordering::SeqCst)
    }

    /// Overrides a field in every later response for this issue (e.g. `status: null`), for
    /// odd-data tests. Like any edit it bumps `updated` and goes through the index lag.
    pub fn set_field_raw(&self, key_or_id: &str, field: &str, value: Value) {
        self.mutate(key_or_id, |_, d| {
            d.raw.insert(field.to_string(), value);
        });
    }

    /// Applies `edit` to a copy of the issue's latest version and records it as a new
    /// version with `updated = now`.
    ///
    /// # Panics
    /// If the issue does not exist (or was deleted): a test bug.
    fn mutate(&self, key_or_id: &str, edit: impl FnOnce(&mut State, &mut IssueData)) -> u64 {
        let now = self.now();
        let mut st = lock(&self.shared.state);
        let id = expect_issue(&st, key_or_id);
        let mut data = st
            .issues
            .get(&id)
            .and_then(Record::latest)
            .cloned()
            .unwrap_or_else(|| panic!("issue {key_or_id} has no live version"));
        let before = data.clone();
        edit(&mut st, &mut data);
        data.updated = now;
        let items = changes(&st, &before, &data);
        let history_id = if items.is_empty() {
            None
        } else {
            st.last_history_id += 1;
            Some(st.last_history_id)
        };
        let moved = data.key != before.key;
        if let Some(r) = st.issues.get_mut(&id) {
            if moved {
                r.old_keys.push(before.key);
            }
            if let Some(history_id) = history_id {
                r.changelog.push(History {
                    id: history_id,
                    created: now,
                    items,
                });
            }
            r.versions.push(Version {
                written: now,
                data: Some(data),
            });
        }
        webhooks::announce(&self.shared, &st, id, "jira:issue_updated");
        id
    }
}

/// The changelog items for an edit, as Jira writes them: the status by id and name, the
/// resolution, the summary by text only.
fn changes(st: &State, before: &IssueData, after: &IssueData) -> Vec<ChangeItem> {
    let mut items = Vec::new();
    if before.resolved.is_some() != after.resolved.is_some() {
        let done = || (Some("10000".to_string()), Some("Done".to_string()));
        let none = || (None, None);
        let ((from, from_string), (to, to_string)) = if after.resolved.is_some() {
            (none(), done())
        } else {
            (done(), none())
        };
        items.push(ChangeItem {
            field: "resolution",
            from,
            from_string,
            to,
            to_string,
        });
    }
    if before.status != after.status {
        items.push(ChangeItem {
            field: "status",
            from: Some(render::position_id(&st.statuses, &before.status)),
            from_string: Some(before.status.clone()),
            to: Some(render::position_id(&st.statuses, &after.status)),
            to_string: Some(after.status.clone()),
        });
    }
    if before.summary != after.summary {
        items.push(ChangeItem {
            field: "summary",
            from: None,
            from_string: Some(before.summary.clone()),
            to: None,
            to_string: Some(after.summary.clone()),
        });
    }
    items.extend(fields::plan_changes(st, &before.plan, &after.plan));
    items
}

fn expect_issue(st: &State, key_or_id: &str) -> u64 {
    st.find(key_or_id)
        .unwrap_or_else(|| panic!("fake Jira has no issue {key_or_id}"))
}

/// Hands out the next key in `project`.
///
/// # Panics
/// If the project does not exist.
fn next_key(st: &mut State, project: &str) -> String {
    let p = st
        .projects
        .iter_mut()
        .find(|p| p.key.eq_ignore_ascii_case(project))
        .unwrap_or_else(|| panic!("fake Jira has no project {project}; call add_project first"));
    p.last_num += 1;
    format!("{}-{}", p.key, p.last_num)
}

fn project_key_of(key: &str) -> String {
    jql::split_key(key)
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

fn snapshot(id: u64, d: &IssueData) -> IssueSnapshot {
    IssueSnapshot {
        id: id.to_string(),
        key: d.key.clone(),
        project: d.project.clone(),
        summary: d.summary.clone(),
        status: d.status.clone(),
        category: d.category.clone(),
        issue_type: d.issue_type.clone(),
        labels: d.labels.clone(),
        created: d.created,
        updated: d.updated,
        resolved: d.resolved,
    }
}
