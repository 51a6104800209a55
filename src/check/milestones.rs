//! `milestones`: whether the token may make milestones and give them to issues, and for
//! `"sprint"` whether this Jira has a sprint field (read without writing).

use super::{Finding, MappedProject};
use crate::config::Mapping;
use crate::gitlab::{Project, PLANNER};
use crate::plan::{no_sprint_field, MilestoneSource};
use crate::reconcile::Reconciler;

/// The findings of every mapping with `milestones` (Jira and GitLab reached), in the projects
/// the mapping checks read.
pub(super) async fn all(r: &Reconciler, projects: &[MappedProject<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (m, p) in projects {
        let Some(source) = m.milestones else { continue };
        out.extend(findings(r, m, source, p.as_ref()).await);
    }
    out
}

async fn findings(
    r: &Reconciler,
    m: &Mapping,
    source: MilestoneSource,
    project: Option<&Project>,
) -> Vec<Finding> {
    let who = m.name();
    let mut out = Vec::new();
    let what = match source {
        MilestoneSource::FixVersion => "its Jira issue's last fix version",
        MilestoneSource::Sprint => "its Jira issue's current sprint",
    };
    if source == MilestoneSource::Sprint {
        match r.jira().sprint_field().await {
            Ok(Some(id)) => out.push(Finding::Ok(format!("{who}: Jira's sprint field is {id}"))),
            Ok(None) => out.push(Finding::Problem(no_sprint_field(&who))),
            Err(e) => out.push(Finding::Problem(format!("{who}: {e}"))),
        }
    }
    match project {
        Some(p) if p.access_level < PLANNER => out.push(Finding::Problem(format!(
            "{who}: milestones: the token's role on {} (access level {}) may not create \
             milestones or give them to issues: give it the Planner role or higher",
            p.path, p.access_level
        ))),
        Some(p) => out.push(Finding::Ok(format!(
            "{who}: each mirror gets {what} as a milestone in {} (made there when missing)",
            p.path
        ))),
        // A project GitLab does not answer for is named by the mapping's own findings.
        None => {}
    }
    out
}
