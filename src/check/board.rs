//! The status board (`status_board`): whether the token may keep it, and what the next pass
//! would write, read without writing. A board of that name that a person made with lists of
//! their own is named: it is adopted, and ours are added beside theirs.

use super::{Finding, MappedProject};
use crate::config::Mapping;
use crate::gitlab::{Project, PLANNER};
use crate::plan::BoardChoice;
use crate::reconcile::Reconciler;

/// The findings of every mapping's status board (Jira and GitLab reached), in the projects
/// the mapping checks read.
pub(super) async fn all(r: &Reconciler, projects: &[MappedProject<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (m, p) in projects {
        // A project GitLab does not answer for is named by the mapping's own findings.
        if let (Some(_), Some(p)) = (&m.status_board, p) {
            out.extend(findings(r, m, p).await);
        }
    }
    out
}

/// The findings for `m`'s status board in the GitLab project `p` (Jira reached too).
async fn findings(r: &Reconciler, m: &Mapping, p: &Project) -> Vec<Finding> {
    let Some(name) = m.status_board.as_deref() else {
        return Vec::new();
    };
    let who = m.name();
    let plan = match r.plan_status_board(m, p.id).await {
        Ok(Some(plan)) => plan,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![Finding::Problem(format!(
                "{who}: status board \"{name}\" cannot be checked: {e}"
            ))]
        }
    };
    let mut out = Vec::new();
    if !plan.is_done() && p.access_level < PLANNER {
        out.push(Finding::Problem(format!(
            "{who}: status board \"{name}\" needs {}, and the token's role on {} (access level \
             {}) may not create boards, lists or labels: give it the Planner role or higher",
            plan.describe(name).join("; "),
            p.path,
            p.access_level
        )));
    }
    let lists = if plan.wanted.is_empty() {
        "no list (the Jira workflow has no status of the \"In Progress\" category)".to_string()
    } else {
        format!(
            "a list per \"In Progress\" status: {}",
            plan.wanted.join(", ")
        )
    };
    out.push(Finding::Ok(match plan.board {
        BoardChoice::Create => format!("{who}: status board \"{name}\" will be created with {lists}"),
        BoardChoice::Reuse(id) if plan.add_lists.is_empty() => {
            format!("{who}: status board \"{name}\" (board {id}) has {lists}")
        }
        BoardChoice::Reuse(id) => format!(
            "{who}: status board \"{name}\" (board {id}) will get the lists it lacks ({}) of {lists}",
            plan.add_lists.join(", ")
        ),
    }));
    if let (BoardChoice::Reuse(id), false) = (plan.board, plan.others.is_empty()) {
        out.push(Finding::Note(format!(
            "{who}: the board name \"{name}\" is taken by board {id}, which has lists that are not \
             ours ({}): it is adopted, its lists stay, and ours are added beside them; choose \
             another status_board name to keep them apart",
            plan.others.join(", ")
        )));
    }
    out
}
