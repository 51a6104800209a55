//! The checks of one mapping: its Jira project and search, its GitLab project and what the
//! token's role there allows (closing, backdating, incidents, group labels), and what the
//! first full pass would do with the Automation recipe's issues.

use std::path::Path;

use super::{problem, Finding, Reached};
use crate::config::Mapping;
use crate::domain::PassKind;
use crate::gitlab::{Project, OWNER, PLANNER};
use crate::reconcile::{Mode, Reconciler};
use crate::store::Store;

/// The mapping's Jira project exists, and Jira accepts its search.
pub(super) async fn jira(r: &Reconciler, m: &Mapping, reached: Reached) -> Vec<Finding> {
    if !reached.jira {
        return Vec::new();
    }
    let name = m.name();
    let exists = match r.jira().check_project(&m.jira_project).await {
        Ok(()) => Finding::Ok(format!("{name}: Jira project {} exists", m.jira_project)),
        Err(e) => Finding::Problem(format!("{name}: {e}")),
    };
    let jql = m.search_filter(Some(chrono::Utc::now()));
    let search = match r.jira().search(&jql).await {
        Ok(_) => Finding::Ok(format!("{name}: Jira accepts the mapping's search")),
        Err(e) => Finding::Problem(format!("{name}: {e}")),
    };
    vec![exists, search]
}

/// The mapping's GitLab project, and what the token may do there. What passes cache about
/// the project (its id, the token's role) is refreshed in `cache`, an existing state database.
pub(super) async fn gitlab(
    r: &Reconciler,
    m: &Mapping,
    reached: Reached,
    cache: Option<&Store>,
) -> (Vec<Finding>, Option<Project>) {
    if !reached.gitlab {
        return (Vec::new(), None);
    }
    let name = m.name();
    let project = r.gitlab().project(&m.gitlab_project).await;
    let mut out = Vec::new();
    if let Some(store) = cache {
        let identity = r.config().gitlab.identity();
        let cached = match &project {
            Ok(p) => store.cache().save_project(&identity, &m.gitlab_project, p),
            Err(_) => store.cache().forget_project(&identity, &m.gitlab_project),
        };
        out.extend(cached.err().as_ref().map(problem));
    }
    match project {
        Ok(p) => {
            out.extend(status_labels(&name, m, &p));
            out.extend(incidents(&name, m, &p));
            out.extend(jira_fields(&name, m, &p));
            if m.assignees {
                out.extend(users(r, &name, &p).await);
                if reached.jira {
                    out.extend(super::assignees::unmapped(r, m, &p).await);
                }
            }
            out.push(role(&name, &p));
            (out, Some(p))
        }
        Err(e) => {
            out.push(Finding::Problem(format!("{name}: {e}")));
            (out, None)
        }
    }
}

/// Where the status labels will be created: group labels serve group-level value streams.
fn status_labels(name: &str, m: &Mapping, p: &Project) -> Option<Finding> {
    let scope = m.status_labels.as_ref()?;
    Some(Finding::Ok(match p.group.as_deref() {
        Some(g) if p.can_create_group_labels() => format!(
            "{name}: status labels ({scope}::<status>) will be created as group labels in {g}, usable by group-level value streams"
        ),
        Some(g) => format!(
            "{name}: status labels ({scope}::<status>) will be project labels: the token has no Planner or Reporter role in the group {g} (group-level value streams need group labels)"
        ),
        None => format!("{name}: status labels ({scope}::<status>) will be project labels"),
    }))
}

/// GitLab files an incident as a plain issue for a role that cannot create incidents.
fn incidents(name: &str, m: &Mapping, p: &Project) -> Option<Finding> {
    let wanted = m.issue_types.values().any(|t| t == "incident");
    (wanted && !p.can_create_incidents()).then(|| Finding::Problem(format!(
        "{name}: issue_types maps to incident, but the token's role on {} (access level {}) cannot create incidents: GitLab would file plain issues; give it the Reporter role or higher",
        p.path, p.access_level
    )))
}

/// `labels_from` and `due_date`: GitLab ignores labels and the due date on an edit, silently,
/// for a role below Planner.
fn jira_fields(name: &str, m: &Mapping, p: &Project) -> Option<Finding> {
    let mut what = Vec::new();
    if m.labels_from.any() {
        what.push("labels_from");
    }
    if m.due_date {
        what.push("due_date");
    }
    if m.assignees {
        what.push("assignees");
    }
    if what.is_empty() {
        return None;
    }
    let verb = if what.len() > 1 { "are" } else { "is" };
    let what = what.join(" and ");
    Some(if p.access_level < PLANNER {
        Finding::Problem(format!(
            "{name}: {what} {verb} on, but the token's role on {} (access level {}) cannot set labels, due dates or assignees: GitLab would ignore them silently on every edit; give it the Planner or Reporter role or higher",
            p.path, p.access_level
        ))
    } else {
        Finding::Ok(format!(
            "{name}: {what}: the token may set labels, due dates and assignees on {}",
            p.path
        ))
    })
}

/// `[users]` for a mapping with `assignees`: each GitLab username exists and is a member of
/// the project (GitLab drops other assignees silently).
async fn users(r: &Reconciler, name: &str, p: &Project) -> Vec<Finding> {
    let mut out = Vec::new();
    for (jira, username) in &r.config().users {
        let found = match r.gitlab().user_id(username).await {
            Ok(Some(id)) => r.gitlab().is_member(p.id, id).await.map(|m| (id, m)),
            Ok(None) => {
                out.push(Finding::Problem(format!(
                    "{name}: [users] maps {jira} to {username}, who is not a GitLab user: fix the username"
                )));
                continue;
            }
            Err(e) => Err(e),
        };
        match found {
            Ok((_, true)) => {}
            Ok((id, false)) => out.push(Finding::Problem(format!(
                "{name}: [users] maps {jira} to {username} (user {id}), who is not a member of {}: GitLab would drop the assignee; add them to the project",
                p.path
            ))),
            Err(e) => out.push(Finding::Problem(format!("{name}: [users] {username}: {e}"))),
        }
    }
    if out.is_empty() && !r.config().users.is_empty() {
        out.push(Finding::Ok(format!(
            "{name}: [users]: {} GitLab users found, each a member of {}",
            r.config().users.len(),
            p.path
        )));
    }
    out
}

/// What the token's role lets passes do: close and reopen, and backdate (Owner).
fn role(name: &str, p: &Project) -> Finding {
    if p.access_level < PLANNER {
        return Finding::Problem(format!(
            "{name}: the token's role on {} (access level {}) cannot close or reopen issues: give it Planner or Reporter or higher",
            p.path, p.access_level
        ));
    }
    if p.access_level < OWNER {
        return Finding::Ok(format!(
            "{name}: GitLab project {} (id {}), the token can create, close and reopen issues; it is not an Owner, so issues cannot be backdated: VSA lead time counts from when the mirror created them",
            p.path, p.id
        ));
    }
    Finding::Ok(format!(
        "{name}: GitLab project {} (id {}), Owner token: created_at and close times are backdated to Jira's",
        p.path, p.id
    ))
}

/// With `seed_iid_prefix`: what the first full pass would do with the recipe's issues, from a
/// dry run (no writes).
pub(super) async fn recipe(r: &Reconciler, m: &Mapping, state_path: &Path) -> Vec<Finding> {
    let Some(prefix) = m.seed_iid_prefix.as_deref() else {
        return Vec::new();
    };
    let store = Store::open_read_only(state_path).ok().flatten();
    let report = r
        .pass_mapping(Mode::DryRun(store.as_ref()), m, PassKind::Full)
        .await;
    let name = m.name();
    // The pass's report, read in this one place.
    let finding = if !report.ok() {
        Finding::Problem(format!(
            "{name}: could not look for the Automation recipe's issues: {}",
            report.failure_lines().join("; ")
        ))
    } else {
        Finding::Ok(format!(
            "{name}: {} issue(s) of the Automation recipe (iid {prefix}<number>) would be adopted; {} recipe slot(s) hold other issues, which are left alone (a new mirror is created for their Jira issue)",
            report.recipe.adopted, report.recipe.foreign
        ))
    };
    vec![finding]
}
