//! A stateful fake GitLab (REST API v4, the issues subset a mirror needs).
//!
//! It copies the behaviour of real GitLab that breaks sync tools: `iid`, `created_at` and
//! `updated_at` silently ignored unless the caller is an Owner, 409 on a taken iid and the iid
//! counter jumping past an explicit iid, per-user create rate limit without `Retry-After`,
//! paging headers with an empty `x-next-page` on the last page, scoped labels that evict each
//! other on paid tiers only, labels as project or group objects (created on first use, or
//! through the labels APIs by roles that may), resource label events stamped with an Owner's
//! `created_at`/`updated_at`, role checks (project and group membership), and scripted faults
//! (see [`crate::FaultPlan`]).
//!
//! The HTTP side lives in `gitlab/api.rs`; this file holds the data model and the API that
//! tests and the `demo` subcommand use to set up and inspect the server.
//!
//! # People, milestones, boards, VSA stamps and value streams
//!
//! Each module's docs state the GitLab rules it follows; in short:
//! - **People** (`gitlab/users.rs`): `GET /users?search=|username=` (lists never show
//!   `public_email`; only admins find private e-mails), `GET /users/:id` (with `public_email`),
//!   `GET /projects/:id/members/all[/:user_id]` (inherited from the group chain, highest role).
//!   Set up with [`FakeGitlab::add_person`], [`FakeGitlab::grant`], [`FakeGitlab::grant_group`],
//!   [`FakeGitlab::block_user`], [`FakeGitlab::set_visibility`]. Groups nest by path
//!   (`acme/team` is in `acme`); a namespace named like a user is a personal namespace.
//! - **Issue metadata** (`gitlab/metadata.rs`): create and edit take `assignee_ids` (or
//!   `assignee_id`), `milestone_id`, `due_date`; the JSON shows `assignees`, `assignee`,
//!   `milestone`, `due_date`. Free keeps the first assignee; unreadable assignees are dropped;
//!   all dropped keeps the old ones; below Planner an edit's metadata is silently ignored.
//!   Inspect with [`FakeGitlab::issue_metadata`]; people edit with `assign_by_hand`,
//!   `set_milestone_by_hand`, `set_due_date_by_hand`, `label_by_hand`.
//! - **Milestones** (`gitlab/milestones.rs`): `GET|POST /projects/:id/milestones`,
//!   `GET|PUT .../milestones/:milestone_id`, the same under `/groups/:id`. Set up with
//!   `add_milestone`, `add_group_milestone`, `close_milestone_by_hand`; inspect `milestones`,
//!   `group_milestones`.
//! - **Boards** (`gitlab/boards.rs`): `GET|POST .../boards`, `GET .../boards/:id`,
//!   `GET|POST .../boards/:id/lists`, `GET|PUT|DELETE .../lists/:list_id` for projects and
//!   groups. Set up with `add_board_by_hand`, `add_board_list_by_hand`,
//!   `remove_board_list_by_hand`; inspect `boards`, `group_boards`.
//! - **VSA stamps and commits** (`gitlab/vsa.rs`): [`FakeGitlab::vsa_stamps`] reads an issue's
//!   `first_added_to_board_at`, `first_associated_with_milestone_at`,
//!   `first_mentioned_in_commit_at` (sim-only, no REST route); [`FakeGitlab::push`] and
//!   [`FakeGitlab::push_commit`] push commits whose messages mention issues.
//! - **GraphQL** (`gitlab/graphql.rs`, `gitlab/value_streams.rs`): `POST /api/graphql`, value
//!   streams on [`Tier::Premium`] only; inspect with [`FakeGitlab::value_streams`]. The
//!   documents a client sends, for example:
//!   ```text
//!   mutation($input: ValueStreamCreateInput!) {
//!     valueStreamCreate(input: $input) { valueStream { id name stages { id name } } errors } }
//!   mutation($input: ValueStreamUpdateInput!) {
//!     valueStreamUpdate(input: $input) { valueStream { id name stages { id name } } errors } }
//!   query($path: ID!) { project(fullPath: $path) { valueStreams { nodes { id name
//!     stages { id name custom hidden startEventIdentifier endEventIdentifier
//!              startEventLabel { id title } endEventLabel { id title } } } } } }
//!   ```
//!   (`group(fullPath:)` likewise; `project { labels(searchTerm:, includeAncestorGroups:)
//!   { nodes { id title } } }` gives label gids). Any selection within the schema table in
//!   `graphql.rs` works, with aliases, variables or literals; fragments and directives do not.
//! - These endpoints count in [`FakeGitlab::requests`] but not in [`FakeGitlab::writes`]
//!   (issue writes only). Scripted faults: their GETs are [`Route::Read`], their writes and
//!   GraphQL mutations [`Route::Update`] (like label creation).

mod api;
mod boards;
mod graphql;
mod labels;
mod list;
mod metadata;
mod milestones;
mod params;
mod render;
mod routes;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
mod users;
mod value_streams;
mod vsa;

pub use boards::BoardSnapshot;
pub use metadata::IssueMetadata;
pub use milestones::MilestoneSnapshot;
pub use users::Visibility;
pub use value_streams::{StageSnapshot, ValueStreamSnapshot};
pub use vsa::{SimCommit, VsaStamps};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

use crate::{lock, Fault, FaultPlan, Route, ServerHandle, SimClock};

/// A project member's role; the discriminant is GitLab's `access_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Guest = 10,
    Planner = 15,
    Reporter = 20,
    Developer = 30,
    Maintainer = 40,
    Owner = 50,
}

impl Role {
    pub(crate) fn access_level(self) -> u8 {
        self as u8
    }
}

/// The subscription tier: only paid tiers make scoped labels exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tier {
    /// Scoped labels (`a::b`) are ordinary labels: adding one removes nothing.
    #[default]
    Free,
    /// Premium and Ultimate: adding `a::b` removes the other `a::` labels.
    Premium,
}

/// Defaults: a fresh clock, any free port, no create limit, the Free tier.
#[derive(Clone, Default)]
pub struct GitlabOptions {
    pub clock: SimClock,
    /// 0 = any free port.
    pub port: u16,
    /// Issue creates allowed per user and window of real time; `None` = no limit.
    /// GitLab.com allows 200 a minute.
    pub create_limit_per_minute: Option<u32>,
    /// The create limit's window (GitLab: 60 s). `None` = a minute.
    pub create_window: Option<Duration>,
    /// Every request is answered after a random delay in this range (a real server's latency).
    pub latency: Option<(Duration, Duration)>,
    /// Offset paging refuses offsets beyond this (GitLab.com: 50,000 for issues) with a 405
    /// that points at keyset paging; `None` = no limit (GitLab's self-managed default).
    pub max_offset: Option<usize>,
    pub tier: Tier,
}

/// One resource label event as a test sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelEventSnapshot {
    pub label: String,
    /// "add" or "remove".
    pub action: String,
    pub created_at: DateTime<Utc>,
    /// The username of who made the change.
    pub user: String,
}

/// What a test sees of an issue, independent of the JSON shape.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueSnapshot {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    /// Empty when the issue has no description (the API shows `null`).
    pub description: String,
    /// "opened" or "closed".
    pub state: String,
    pub labels: Vec<String>,
    pub issue_type: String,
    /// Timestamps have microsecond precision (as in GitLab's database); the API shows
    /// milliseconds.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The author's username.
    pub author: String,
}

/// The running fake. Dropping it stops the server.
pub struct FakeGitlab {
    state: Shared,
    server: ServerHandle,
}

impl FakeGitlab {
    pub async fn start(opts: GitlabOptions) -> std::io::Result<FakeGitlab> {
        let state: Shared = Arc::new(Mutex::new(State::new(&opts)));
        let server = crate::serve(api::router(state.clone()), opts.port).await?;
        lock(&state).base_url = server.url();
        Ok(FakeGitlab { state, server })
    }

    /// Base URL without `/api/v4`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn clock(&self) -> SimClock {
        lock(&self.state).clock.clone()
    }

    /// Add a user who authenticates with `token`; returns the user id.
    pub fn add_user(&self, username: &str, token: &str) -> u64 {
        let mut st = lock(&self.state);
        let id = st.users.len() as u64 + 1;
        st.users.push(User {
            id,
            username: username.to_owned(),
            token: Some(token.to_owned()),
            admin: false,
            profile: users::Profile::default(),
        });
        id
    }

    /// Add an instance administrator who authenticates with `token`; returns the user id.
    pub fn add_admin(&self, username: &str, token: &str) -> u64 {
        let id = self.add_user(username, token);
        let mut st = lock(&self.state);
        if let Some(u) = st.users.iter_mut().find(|u| u.id == id) {
            u.admin = true;
        }
        id
    }

    /// Add a project (`namespace/name`); returns its id. Ids start at 4 so that a client
    /// mixing up project ids, issue ids and iids is caught. Adding a path twice returns
    /// the existing id.
    pub fn add_project(&self, path_with_namespace: &str) -> u64 {
        let mut st = lock(&self.state);
        if let Some(i) = st.project_index(path_with_namespace) {
            return st.projects[i].id;
        }
        let id = st.projects.len() as u64 + 4;
        // A namespace named like a user is that user's personal namespace, not a group.
        let group = path_with_namespace
            .rsplit_once('/')
            .filter(|(namespace, _)| !st.users.iter().any(|u| u.username == *namespace))
            .map(|(namespace, _)| st.group_index_or_add(namespace));
        st.add_ancestor_groups(path_with_namespace);
        let mut project = Project::new(id, path_with_namespace);
        project.group = group;
        st.projects.push(project);
        id
    }

    /// Make `username` a member of `project` (path or numeric id) with `role`.
    ///
    /// Panics on an unknown project or user: that is a bug in the test, not a request.
    pub fn grant(&self, project: &str, username: &str, role: Role) {
        let mut st = lock(&self.state);
        let user = st
            .users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.id)
            .unwrap_or_else(|| panic!("fake gitlab: no user {username:?}"));
        st.project_mut(project).members.insert(user, role);
    }

    /// Make `username` a member of `group` (its path, e.g. `acme`) with `role`; the role
    /// applies to every project in the group, as in GitLab.
    ///
    /// Panics on an unknown group or user: that is a bug in the test, not a request.
    pub fn grant_group(&self, group: &str, username: &str, role: Role) {
        let mut st = lock(&self.state);
        let user = st
            .users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.id)
            .unwrap_or_else(|| panic!("fake gitlab: no user {username:?}"));
        let g = st
            .groups
            .iter_mut()
            .find(|g| g.path.eq_ignore_ascii_case(group))
            .unwrap_or_else(|| panic!("fake gitlab: no group {group:?}"));
        g.members.insert(user, role);
    }

    /// The names of a project's own labels (not its group's), sorted.
    pub fn project_labels(&self, project: &str) -> Vec<String> {
        let st = lock(&self.state);
        let i = st.project_index_or_panic(project);
        let mut names: Vec<String> = st.projects[i]
            .labels
            .iter()
            .map(|l| l.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The names of a group's labels, sorted.
    pub fn group_labels(&self, group: &str) -> Vec<String> {
        let st = lock(&self.state);
        let mut names: Vec<String> = st
            .groups
            .iter()
            .filter(|g| g.path.eq_ignore_ascii_case(group))
            .flat_map(|g| g.labels.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// An issue's resource label events, oldest first.
    pub fn label_events(&self, project: &str, iid: u64) -> Vec<LabelEventSnapshot> {
        let st = lock(&self.state);
        let i = st.project_index_or_panic(project);
        st.projects[i]
            .issues
            .get(&iid)
            .map(|issue| {
                issue
                    .label_events
                    .iter()
                    .map(|e| LabelEventSnapshot {
                        label: e.label.name.clone(),
                        action: if e.add { "add" } else { "remove" }.to_owned(),
                        created_at: e.created_at,
                        user: username(&st.users, e.user),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Create an issue with an explicit iid and creation time, as the Automation recipe's
    /// Owner token does (author: root). Returns the iid. Not counted as a request.
    pub fn create_with_iid(
        &self,
        project: &str,
        iid: u64,
        title: &str,
        created_at: DateTime<Utc>,
    ) -> u64 {
        let mut st = lock(&self.state);
        let pi = st.project_index_or_panic(project);
        let new = NewIssue {
            title: title.to_owned(),
            description: None,
            labels: Vec::new(),
            issue_type: "issue".to_owned(),
            iid: Some(iid),
            created_at: Some(created_at),
        };
        match st.insert_issue(pi, new, ROOT_USER_ID) {
            Ok(iid) => iid,
            Err(e) => panic!("fake gitlab: create_with_iid failed: {e:?}"),
        }
    }

    /// Close an issue by hand at a given time (the recipe's "Done" rule with an Owner token).
    pub fn close_by_hand_at(&self, project: &str, iid: u64, at: DateTime<Utc>) {
        self.edit_by_hand(project, iid, |issue, _| issue.close(at, ROOT_USER_ID));
    }

    /// Whether a project with this path or id exists.
    pub fn has_project(&self, project: &str) -> bool {
        lock(&self.state).project_index(project).is_some()
    }

    /// All issues of `project`, ordered by iid.
    /// How many issues `project` holds (cheap, for sampling during a run).
    pub fn issue_count(&self, project: &str) -> usize {
        let st = lock(&self.state);
        st.project_index(project)
            .map_or(0, |i| st.projects[i].issues.len())
    }

    pub fn issues(&self, project: &str) -> Vec<IssueSnapshot> {
        let mut st = lock(&self.state);
        let st = &mut *st;
        let i = st.project_index_or_panic(project);
        let p = &st.projects[i];
        p.issues
            .values()
            .map(|issue| issue.snapshot(p.id, &st.users))
            .collect()
    }

    pub fn issue(&self, project: &str, iid: u64) -> Option<IssueSnapshot> {
        let st = lock(&self.state);
        let i = st.project_index_or_panic(project);
        let p = &st.projects[i];
        p.issues
            .get(&iid)
            .map(|issue| issue.snapshot(p.id, &st.users))
    }

    /// Create an issue as a person would in the UI (author: the instance's `root`); it takes
    /// the next iid from the project's counter. Returns the iid. Not counted as a request.
    pub fn create_by_hand(&self, project: &str, title: &str, description: &str) -> u64 {
        let mut st = lock(&self.state);
        let pi = st.project_index_or_panic(project);
        let new = NewIssue {
            title: title.to_owned(),
            description: Some(description.to_owned()).filter(|d| !d.is_empty()),
            labels: Vec::new(),
            issue_type: "issue".to_owned(),
            iid: None,
            created_at: None,
        };
        match st.insert_issue(pi, new, ROOT_USER_ID) {
            Ok(iid) => iid,
            Err(e) => panic!("fake gitlab: create_by_hand failed: {e:?}"),
        }
    }

    pub fn close_by_hand(&self, project: &str, iid: u64) {
        self.edit_by_hand(project, iid, |issue, now| issue.close(now, ROOT_USER_ID));
    }

    pub fn reopen_by_hand(&self, project: &str, iid: u64) {
        self.edit_by_hand(project, iid, |issue, _| issue.reopen());
    }

    pub fn describe_by_hand(&self, project: &str, iid: u64, description: &str) {
        self.edit_by_hand(project, iid, |issue, _| {
            issue.description = Some(description.to_owned())
        });
    }

    pub fn retitle_by_hand(&self, project: &str, iid: u64, title: &str) {
        self.edit_by_hand(project, iid, |issue, _| issue.title = title.to_owned());
    }

    /// Panics if the issue does not exist.
    pub fn delete_by_hand(&self, project: &str, iid: u64) {
        let mut st = lock(&self.state);
        if st.project_mut(project).issues.remove(&iid).is_none() {
            panic!("fake gitlab: no issue #{iid} in {project}");
        }
    }

    /// Queue `fault` for the next `times` requests of kind `route`.
    pub fn inject(&self, route: Route, fault: Fault, times: usize) {
        lock(&self.state).faults.push(route, fault, times);
    }

    pub fn random_faults(&self, seed: u64, rate: f64, faults: Vec<Fault>) {
        lock(&self.state).faults.random(seed, rate, faults);
    }

    /// Random faults on requests of kind `route` only.
    pub fn random_faults_on(&self, route: Route, seed: u64, rate: f64, faults: Vec<Fault>) {
        lock(&self.state)
            .faults
            .random_on(route, seed, rate, faults);
    }

    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    /// Issue POST/PUT/DELETE requests that were answered 2xx or committed behind a fault.
    pub fn writes(&self) -> usize {
        lock(&self.state).counters.writes
    }

    /// The most requests this server was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        lock(&self.state).counters.max_in_flight
    }

    /// The most projects that had requests being answered at the same moment.
    pub fn max_projects_in_flight(&self) -> usize {
        lock(&self.state).counters.max_projects_in_flight
    }

    /// Requests received and not answered yet (a delayed create is in flight until it lands).
    pub fn in_flight(&self) -> usize {
        lock(&self.state).counters.in_flight
    }

    /// Creates refused by the create limit (429).
    pub fn refused_creates(&self) -> usize {
        lock(&self.state).counters.refused_creates
    }

    /// Every request received, whatever its answer.
    pub fn requests(&self) -> usize {
        lock(&self.state).counters.requests
    }

    /// Keyset listings lead from their last page back to the first (`Loop`), or do so with
    /// a new link every time (`EverNew`); `None` ends them as GitLab does.
    pub fn set_page_trap(&self, trap: Option<crate::PageTrap>) {
        lock(&self.state).page_trap = trap;
    }

    /// Record from now on when each request arrives (see `arrivals`).
    pub fn record_arrivals(&self) {
        lock(&self.state).arrivals.get_or_insert_with(Vec::new);
    }

    /// When each request arrived and what it was (`POST /api/v4/projects/4/issues`), oldest
    /// first, since `record_arrivals`.
    pub fn arrivals(&self) -> Vec<(Instant, String)> {
        lock(&self.state).arrivals.clone().unwrap_or_default()
    }

    /// Bytes of huge answers ([`Fault::Huge`]) handed to connections so far.
    pub fn streamed_bytes(&self) -> u64 {
        lock(&self.state)
            .streamed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.server.connections()
    }

    /// `GET .../issues` list requests, whatever their answer.
    pub fn list_requests(&self) -> usize {
        lock(&self.state).counters.lists
    }

    /// Apply a UI edit: bumps `updated_at` only if something changed, as Rails does.
    fn edit_by_hand(&self, project: &str, iid: u64, edit: impl FnOnce(&mut Issue, DateTime<Utc>)) {
        let mut st = lock(&self.state);
        let now = st.now();
        let issue = st
            .project_mut(project)
            .issues
            .get_mut(&iid)
            .unwrap_or_else(|| panic!("fake gitlab: no issue #{iid} in {project}"));
        let before = issue.clone();
        edit(issue, now);
        if *issue != before {
            issue.updated_at = now;
        }
        // A UI edit is a save: GitLab re-checks the issue's VSA stamps.
        let pi = st.project_index_or_panic(project);
        st.restamp(pi, iid);
    }
}

/// The next keyset cursor, as the page trap (if any) has it: after the last page, the first
/// page again ("0" sorts before every issue), and with `EverNew` a suffix no link repeats.
fn trapped_cursor(st: &State, next: Option<String>) -> Option<String> {
    let Some(trap) = st.page_trap else {
        return next;
    };
    let next = next.unwrap_or_else(|| "0".to_owned());
    Some(match trap {
        crate::PageTrap::Loop => next,
        crate::PageTrap::EverNew => {
            let n = st.nonce.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("{next}~{n}")
        }
    })
}

// ---------------------------------------------------------------------------------------
// Server state
// ---------------------------------------------------------------------------------------

type Shared = Arc<Mutex<State>>;

/// Everything issue 17 added to the server's state, in one place so the core stays small.
#[derive(Default)]
struct Planning {
    milestones: Vec<milestones::Milestone>,
    boards: Vec<boards::Board>,
    value_streams: Vec<value_streams::ValueStream>,
    /// Project id → visibility; absent means private.
    visibility: HashMap<u64, Visibility>,
    /// Global ids handed out for milestones, boards and their lists, value streams and stages.
    last_id: u64,
    /// Commits pushed so far (for unique shas).
    commits: u64,
}

impl Planning {
    fn next_id(&mut self) -> u64 {
        // Far from issue ids, iids and label ids, so a client mixing them up fails loudly.
        self.last_id = self.last_id.max(300) + 1;
        self.last_id
    }
}

/// The instance administrator that UI-made issues are attributed to. It has no token.
const ROOT_USER_ID: u64 = 1;

/// A group (namespace): members whose role covers its projects, and group labels.
struct Group {
    id: u64,
    path: String,
    members: HashMap<u64, Role>,
    labels: Vec<Label>,
}

#[derive(Clone, Debug, PartialEq)]
struct Label {
    id: u64,
    name: String,
    color: String,
    description: Option<String>,
}

/// A row of `resource_label_events`: `created_at` is the issue's system-note timestamp,
/// which an Owner's `created_at`/`updated_at` sets.
#[derive(Clone, Debug, PartialEq)]
struct LabelEvent {
    id: u64,
    user: u64,
    created_at: DateTime<Utc>,
    label: Label,
    add: bool,
}

struct User {
    id: u64,
    username: String,
    token: Option<String>,
    /// Instance administrators see every project and act as its Owner without membership.
    admin: bool,
    /// Name, e-mails and state (see `gitlab/users.rs`).
    profile: users::Profile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IssueState {
    Opened,
    Closed,
}

impl IssueState {
    fn as_str(self) -> &'static str {
        match self {
            IssueState::Opened => "opened",
            IssueState::Closed => "closed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Issue {
    id: u64,
    iid: u64,
    title: String,
    /// `None` until someone sets one: the API then shows `null`, not `""`.
    description: Option<String>,
    state: IssueState,
    /// Kept sorted, as the API returns them.
    labels: Vec<String>,
    issue_type: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    closed_by: Option<u64>,
    author: u64,
    label_events: Vec<LabelEvent>,
    /// Assignees, milestone, due date and VSA stamps (see `gitlab/metadata.rs`).
    plan: metadata::IssuePlan,
}

impl Issue {
    /// Close (no-op when closed already): `closed_at` is `at`, which is either now or an
    /// Owner-supplied `updated_at`.
    fn close(&mut self, at: DateTime<Utc>, by: u64) {
        if self.state == IssueState::Opened {
            self.state = IssueState::Closed;
            self.closed_at = Some(at);
            self.closed_by = Some(by);
        }
    }

    /// Reopen (no-op when open); GitLab forgets when and by whom it was closed.
    fn reopen(&mut self) {
        if self.state == IssueState::Closed {
            self.state = IssueState::Opened;
            self.closed_at = None;
            self.closed_by = None;
        }
    }

    /// Add labels in order. On paid tiers a scoped label `scope::value` evicts the labels of
    /// the same scope, so the last one given for a scope wins; on Free it is a plain label.
    fn add_labels(&mut self, labels: &[String], tier: Tier) {
        for label in labels {
            if let Some(scope) = label_scope(label).filter(|_| tier == Tier::Premium) {
                self.labels.retain(|l| label_scope(l) != Some(scope));
            }
            if !self.labels.contains(label) {
                self.labels.push(label.clone());
            }
        }
        self.labels.sort();
    }

    fn remove_labels(&mut self, labels: &[String]) {
        self.labels.retain(|l| !labels.contains(l));
    }

    fn snapshot(&self, project_id: u64, users: &[User]) -> IssueSnapshot {
        IssueSnapshot {
            id: self.id,
            iid: self.iid,
            project_id,
            title: self.title.clone(),
            description: self.description.clone().unwrap_or_default(),
            state: self.state.as_str().to_owned(),
            labels: self.labels.clone(),
            issue_type: self.issue_type.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: self.closed_at,
            author: username(users, self.author),
        }
    }
}

/// The scope of a scoped label: everything before the last `::` (`a::b::c` is in `a::b`).
fn label_scope(label: &str) -> Option<&str> {
    label.rsplit_once("::").map(|(scope, _)| scope)
}

fn username(users: &[User], id: u64) -> String {
    users
        .iter()
        .find(|u| u.id == id)
        .map(|u| u.username.clone())
        .unwrap_or_default()
}

/// A validated create request, after role filtering.
#[derive(Debug)]
struct NewIssue {
    title: String,
    description: Option<String>,
    labels: Vec<String>,
    issue_type: String,
    /// Only ever `Some` for an Owner.
    iid: Option<u64>,
    /// Only ever `Some` for an Owner.
    created_at: Option<DateTime<Utc>>,
}

struct Project {
    id: u64,
    path: String,
    members: HashMap<u64, Role>,
    /// Index of its group in `State::groups` (`None` for a personal namespace).
    group: Option<usize>,
    labels: Vec<Label>,
    issues: BTreeMap<u64, Issue>,
    /// The highest iid ever handed out or explicitly requested; deleted iids are not reused
    /// by auto-numbering.
    last_iid: u64,
}

impl Project {
    fn new(id: u64, path: &str) -> Project {
        Project {
            id,
            path: path.to_owned(),
            members: HashMap::new(),
            group: None,
            labels: Vec::new(),
            issues: BTreeMap::new(),
            last_iid: 0,
        }
    }

    /// Pick the iid for a new issue. An explicit iid must be free, and it drags the counter
    /// up with it: this is how an explicit iid steals the slot of the next UI issue.
    fn allocate_iid(&mut self, explicit: Option<u64>) -> Result<u64, api::ApiError> {
        match explicit {
            Some(iid) if self.issues.contains_key(&iid) => Err(api::ApiError::duplicated_issue()),
            Some(iid) => {
                self.last_iid = self.last_iid.max(iid);
                Ok(iid)
            }
            None => {
                self.last_iid += 1;
                Ok(self.last_iid)
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: usize,
    writes: usize,
    lists: usize,
    refused_creates: usize,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
    in_flight_by_project: HashMap<String, usize>,
    /// The most projects that had requests in flight at the same moment.
    max_projects_in_flight: usize,
}

struct State {
    clock: SimClock,
    /// `http://127.0.0.1:PORT`, set once the server is bound; used in `web_url` and `Link`.
    base_url: String,
    create_limit: Option<u32>,
    create_window: Duration,
    latency: Option<(Duration, Duration)>,
    max_offset: Option<usize>,
    rng: crate::Xorshift,
    tier: Tier,
    users: Vec<User>,
    projects: Vec<Project>,
    groups: Vec<Group>,
    next_issue_id: u64,
    next_label_id: u64,
    next_event_id: u64,
    faults: FaultPlan,
    counters: Counters,
    /// Milestones, boards, value streams, commits, project visibility (issue 17's additions).
    planning: Planning,
    /// Per user, GitLab's create-limit window: when it opened (real time) and how many create
    /// attempts it counted. Like GitLab's `ApplicationRateLimiter`, a window opens with the first
    /// attempt after the previous one expired, and refused attempts count too.
    create_windows: HashMap<u64, (Instant, u32)>,
    /// Bytes of huge answers handed to connections ([`Fault::Huge`]).
    streamed: Arc<std::sync::atomic::AtomicU64>,
    /// Keyset listings whose next-page links never end (hostile mode).
    page_trap: Option<crate::PageTrap>,
    nonce: std::sync::atomic::AtomicU64,
    /// When each request arrived, and what it was (`GET /api/v4/...`), oldest first; only
    /// once a test asks for it (`record_arrivals`), so the benchmark's memory is its own.
    arrivals: Option<Vec<(Instant, String)>>,
}

impl State {
    fn new(opts: &GitlabOptions) -> State {
        State {
            clock: opts.clock.clone(),
            base_url: String::new(),
            create_limit: opts.create_limit_per_minute,
            create_window: opts.create_window.unwrap_or(Duration::from_secs(60)),
            latency: opts.latency,
            max_offset: opts.max_offset,
            rng: crate::Xorshift::new(0x6c61_7465),
            tier: opts.tier,
            groups: Vec::new(),
            next_label_id: 41,
            next_event_id: 142,
            users: vec![User {
                id: ROOT_USER_ID,
                username: "root".to_owned(),
                token: None,
                admin: true,
                profile: users::Profile::default(),
            }],
            projects: Vec::new(),
            // Global issue ids far from iids, so a client that confuses them fails loudly.
            next_issue_id: 1001,
            faults: FaultPlan::default(),
            counters: Counters::default(),
            planning: Planning::default(),
            create_windows: HashMap::new(),
            streamed: Arc::default(),
            page_trap: None,
            nonce: std::sync::atomic::AtomicU64::new(0),
            arrivals: None,
        }
    }

    /// The sim clock at database precision: Postgres keeps microseconds, the API shows
    /// milliseconds, so a snapshot can be finer than the JSON it matches.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// A project by numeric id or by path (paths compare case-insensitively, as in GitLab).
    fn project_index(&self, key: &str) -> Option<usize> {
        let by_id = key.parse::<u64>().ok();
        self.projects.iter().position(|p| match by_id {
            Some(id) => p.id == id,
            None => p.path.eq_ignore_ascii_case(key),
        })
    }

    fn project_index_or_panic(&self, key: &str) -> usize {
        self.project_index(key)
            .unwrap_or_else(|| panic!("fake gitlab: no project {key:?}"))
    }

    fn project_mut(&mut self, key: &str) -> &mut Project {
        let i = self.project_index_or_panic(key);
        &mut self.projects[i]
    }

    fn group_index_or_add(&mut self, path: &str) -> usize {
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.path.eq_ignore_ascii_case(path))
        {
            return i;
        }
        let id = 9000 + self.groups.len() as u64 + 1;
        self.groups.push(Group {
            id,
            path: path.to_owned(),
            members: HashMap::new(),
            labels: Vec::new(),
        });
        self.groups.len() - 1
    }

    /// Store a new issue; returns its iid. Timestamps come from the sim clock unless an
    /// (Owner-only) `created_at` was given.
    fn insert_issue(
        &mut self,
        project: usize,
        new: NewIssue,
        author: u64,
    ) -> Result<u64, api::ApiError> {
        let now = self.now();
        let iid = self.projects[project].allocate_iid(new.iid)?;
        let id = self.next_issue_id;
        self.next_issue_id += 1;
        let mut issue = Issue {
            id,
            iid,
            title: new.title,
            description: new.description,
            state: IssueState::Opened,
            labels: Vec::new(),
            issue_type: new.issue_type,
            created_at: new.created_at.unwrap_or(now),
            // Rails fills in updated_at with the current time even when created_at is given.
            updated_at: now,
            closed_at: None,
            closed_by: None,
            author,
            label_events: Vec::new(),
            plan: metadata::IssuePlan::default(),
        };
        let at = issue.created_at;
        issue.add_labels(&new.labels, self.tier);
        self.projects[project].issues.insert(iid, issue);
        self.record_label_changes(project, iid, author, at, &[]);
        Ok(iid)
    }
}
