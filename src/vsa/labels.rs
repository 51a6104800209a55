//! The status labels the new stages start and end on: a label event needs the label's global
//! id, so a label no mirror has carried yet is created first, as a pass would create it (a
//! group label when the token may, else a project label; a group value stream needs group
//! labels).

use std::collections::BTreeMap;

use super::stages::{Planned, ISSUE_CLOSED, ISSUE_CREATED, LABEL_ADDED, LABEL_REMOVED};
use super::Clients;
use crate::domain::StatusCategory;
use crate::error::{Error, Result};
use crate::gitlab::{Project, StageEvent, StageInput, StreamNamespace, PLANNER};
use crate::jira::Workflow;

/// Label title → global id (`gid://gitlab/GroupLabel/5`).
pub(super) type LabelIds = BTreeMap<String, String>;

/// The labels of the new status stages, with the colour and description a pass would give.
pub(super) struct Needed {
    labels: Vec<(String, &'static str, String)>,
}

impl Needed {
    pub(super) fn new(stages: &[Planned], workflow: &Workflow, scope: &str) -> Needed {
        let labels = stages
            .iter()
            .filter_map(|s| match s {
                Planned::Status { label, .. } => Some(label),
                _ => None,
            })
            .map(|label| {
                let status = workflow
                    .statuses
                    .iter()
                    .find(|s| crate::domain::status_label(scope, &s.name) == *label);
                let color = match status.map(|s| &s.category) {
                    Some(StatusCategory::New) => "#42526E",
                    Some(StatusCategory::InProgress) => "#0052CC",
                    _ => "#6699cc",
                };
                let name = status.map_or(label.as_str(), |s| s.name.as_str());
                let description =
                    format!("Jira status \"{name}\" (kept by jira-gitlab-reconciler)");
                (label.clone(), color, description)
            })
            .collect();
        Needed { labels }
    }

    fn titles(&self) -> Vec<String> {
        self.labels.iter().map(|(t, ..)| t.clone()).collect()
    }

    /// The labels' ids, after creating the missing ones (with `dry_run`, only said).
    pub(super) async fn ensure(
        &self,
        c: &Clients,
        project: &Project,
        ns: StreamNamespace<'_>,
        dry_run: bool,
    ) -> Result<LabelIds> {
        let ids = c
            .graphql
            .label_ids(ns, &self.titles())
            .await
            .map_err(super::graphql)?;
        let missing: Vec<&(String, &str, String)> = self
            .labels
            .iter()
            .filter(|(t, ..)| !ids.contains_key(t))
            .collect();
        if missing.is_empty() {
            return Ok(ids);
        }
        let group = matches!(ns, StreamNamespace::Group(_));
        if group && project.group_access_level < PLANNER {
            let titles: Vec<&str> = missing.iter().map(|(t, ..)| t.as_str()).collect();
            return Err(Error::RoleTooLow(format!(
                "a group value stream needs group labels, and {} has none named {}; the token \
                 may not create them there (it needs the Planner role or higher in the group): \
                 raise its role in the group, or leave out --group for a project value stream",
                ns.path(),
                titles.join(", ")
            )));
        }
        for (title, color, description) in missing {
            if dry_run {
                println!("  + label {title} (created when this runs)");
                continue;
            }
            create(c, project, group, title, color, description).await?;
        }
        if dry_run {
            return Ok(ids);
        }
        c.graphql
            .label_ids(ns, &self.titles())
            .await
            .map_err(super::graphql)
    }
}

/// Create one status label: in the group for a group stream, else where a pass would.
async fn create(
    c: &Clients,
    project: &Project,
    group_stream: bool,
    title: &str,
    color: &str,
    description: &str,
) -> Result<()> {
    let in_group = project
        .group
        .as_deref()
        .filter(|_| group_stream || project.can_create_group_labels());
    let created = match in_group {
        Some(group) => match c
            .gitlab
            .create_group_label(group, title, color, description)
            .await
        {
            Err(e) if !group_stream && matches!(e.status(), Some(403 | 404)) => {
                c.gitlab
                    .create_project_label(project.id, title, color, description)
                    .await
            }
            other => other,
        },
        None => {
            c.gitlab
                .create_project_label(project.id, title, color, description)
                .await
        }
    };
    created?;
    println!("  created label {title}");
    Ok(())
}

/// The stages as GitLab's mutation input, with the labels' ids.
pub(super) fn inputs(stages: &[Planned], ids: &LabelIds) -> Result<Vec<StageInput>> {
    let event = |identifier, label: Option<&str>| -> Result<StageEvent> {
        let label_id = match label {
            None => None,
            Some(l) => Some(ids.get(l).cloned().ok_or_else(|| {
                Error::Config(format!(
                    "the label {l} is not visible where the value stream is, even after \
                     creating it: a group value stream sees only its group's labels"
                ))
            })?),
        };
        Ok(StageEvent {
            identifier,
            label_id,
        })
    };
    stages
        .iter()
        .map(|s| {
            Ok(match s {
                Planned::Keep { id, .. } => StageInput::Keep { id: id.clone() },
                Planned::Default { name } => StageInput::Default {
                    name: name.to_string(),
                },
                Planned::Status { name, label } => StageInput::Custom {
                    name: name.clone(),
                    start: event(LABEL_ADDED, Some(label))?,
                    end: event(LABEL_REMOVED, Some(label))?,
                },
                Planned::LeadTime { name } => StageInput::Custom {
                    name: name.clone(),
                    start: event(ISSUE_CREATED, None)?,
                    end: event(ISSUE_CLOSED, None)?,
                },
            })
        })
        .collect()
}
