//! `assignees`: the Jira people who may be assigned the mapping's issues and would stay
//! unassigned in GitLab, named before a pass meets them. Jira's assignable users of the
//! project (at most `MAX_ASSIGNABLE`), each resolved exactly as a pass resolves an assignee
//! (`reconcile/people.rs`: `[users]`, then a visible e-mail matching exactly one GitLab user's
//! public e-mail, then project membership).

use super::Finding;
use crate::config::Mapping;
use crate::domain::JiraUser;
use crate::gitlab::Project;
use crate::jira::MAX_ASSIGNABLE;
use crate::reconcile::Reconciler;

/// People named in full; the rest are counted (a site-wide project can have hundreds).
const NAMED: usize = 20;

pub(super) async fn unmapped(r: &Reconciler, m: &Mapping, p: &Project) -> Vec<Finding> {
    let name = m.name();
    let key = &m.jira_project;
    let assignable = match r.jira().assignable_users(key).await {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::Problem(format!(
                "{name}: cannot list the users assignable in {key}: {e}"
            ))]
        }
    };
    let nobody = match r.unassignable(p, &assignable.users).await {
        Ok(n) => n,
        Err(e) => {
            return vec![Finding::Problem(format!(
                "{name}: assignees: {}",
                e.report()
            ))]
        }
    };
    let mut out = Vec::new();
    if assignable.truncated {
        out.push(Finding::Note(format!(
            "{name}: {key} has more than {MAX_ASSIGNABLE} assignable Jira users: only the first {MAX_ASSIGNABLE} were checked"
        )));
    }
    if nobody.is_empty() {
        out.push(Finding::Ok(format!(
            "{name}: each of the {} Jira users assignable in {key} has a GitLab user who is a member of {}",
            assignable.users.len(),
            p.path
        )));
        return out;
    }
    let named = by_reason(&nobody);
    let n = crate::domain::plural(
        nobody.len() as u64,
        "Jira assignee has",
        "Jira assignees have",
    );
    out.push(Finding::Note(format!(
        "{name}: {n} no GitLab user (their issues' mirrors stay unassigned): {named}; add them to [users] (\"<Jira accountId or e-mail>\" = \"<GitLab username>\") and make that user a member of {}",
        p.path
    )));
    out
}

/// "Carol (accountId …), Erin (…): not in [users], and Jira hides the e-mail; Dave (…): GitLab
/// user 6 is not a member of acme/platform", the first [`NAMED`] people, then a count.
fn by_reason(nobody: &[(JiraUser, String)]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (user, why) in nobody.iter().take(NAMED) {
        match groups.iter_mut().find(|(w, _)| w == why) {
            Some((_, names)) => names.push(user.describe()),
            None => groups.push((why, vec![user.describe()])),
        }
    }
    let mut parts: Vec<String> = groups
        .iter()
        .map(|(why, names)| format!("{}: {why}", names.join(", ")))
        .collect();
    if nobody.len() > NAMED {
        parts.push(format!("and {} more", nobody.len() - NAMED));
    }
    parts.join("; ")
}
