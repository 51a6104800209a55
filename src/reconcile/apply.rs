//! Applying a plan: the only code that writes to GitLab. A create's intent is recorded before
//! it is sent and the mirror after, so a crash or a lost answer never becomes a duplicate;
//! every edit's answer is checked, since GitLab answers 200 even when it ignores a field.

use std::collections::{BTreeMap, HashSet};

use super::{PassReport, Reconciler};
use crate::config::Mapping;
use crate::domain::{GitlabIssue, GitlabState, JiraIssue, Mirror};
use crate::error::{Error, Result};
use crate::gitlab::{IssueEdit, NewIssue, Project, StateEvent};
use crate::plan::Action;
use crate::store::Store;

impl Reconciler {
    /// Carry out `actions` in order. Returns the Jira ids whose create got no reliable answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply(
        &self,
        store: &Store,
        mapping: &Mapping,
        project: &Project,
        actions: &[Action],
        recovering: bool,
        report: &mut PassReport,
        failures: &mut BTreeMap<String, String>,
    ) -> Result<HashSet<String>> {
        let name = mapping.name();
        let mut ambiguous = HashSet::new();
        let mut warned_backdate = false;
        for action in actions {
            if self.stopping() {
                break;
            }
            let key = action.jira_key().to_string();
            match action {
                Action::Create { .. } if recovering => {
                    // The marker scan did not find it, but the lost request may still land: a
                    // second create now could be a duplicate. The intent stays recorded, so the
                    // next pass scans again and creates only if it is still missing.
                    failures.insert(
                        key.clone(),
                        format!("{key}: GitLab gave no reliable answer to its create and the issue is not there (yet); the next pass looks for it again before creating"),
                    );
                }
                Action::Create {
                    jira,
                    title,
                    description,
                    close,
                } => {
                    // Intent first: if the process dies after GitLab commits the issue but
                    // before the mirror is saved, the next pass finds it by its marker.
                    store.record_intent(&name, &jira.id, &jira.key)?;
                    let new = NewIssue {
                        title: title.clone(),
                        description: description.clone(),
                        labels: mapping.labels.clone(),
                        created_at: project.can_backdate().then_some(jira.created),
                    };
                    let created = match self.gitlab.create(project.id, &new).await {
                        Ok(g) => g,
                        Err(e) if e.is_ambiguous() => {
                            ambiguous.insert(jira.id.clone());
                            failures.insert(
                                key.clone(),
                                format!("{key}: {e}; the next look-up by marker decides"),
                            );
                            continue;
                        }
                        Err(e) => {
                            store.clear_intent(&name, &jira.id)?;
                            report.needs_user |= e.is_configuration_problem();
                            failures.insert(key.clone(), format!("{key}: create failed: {e}"));
                            continue;
                        }
                    };
                    store.save_mirror(
                        &name,
                        &Mirror {
                            jira_id: jira.id.clone(),
                            jira_key: jira.key.clone(),
                            iid: created.iid,
                        },
                    )?;
                    failures.remove(&key);
                    report.counts.created += 1;
                    tracing::info!(mapping = %name, jira = %key, iid = created.iid, "created GitLab issue");
                    if !warned_backdate {
                        warned_backdate = true;
                        self.warn_if_not_backdated(project, jira, &created);
                    }
                    if *close {
                        let edit = IssueEdit {
                            state_event: Some(StateEvent::Close),
                            ..IssueEdit::default()
                        };
                        if let Err(e) = self.edit(project, jira, created.iid, edit).await {
                            report.needs_user |= e.exit_code() == 2;
                            failures.insert(
                                key.clone(),
                                format!(
                                    "{key}: created as #{} but closing failed: {e}",
                                    created.iid
                                ),
                            );
                        }
                    }
                }
                Action::Link { mirror, adopted } => {
                    store.save_mirror(&name, mirror)?;
                    failures.remove(&key);
                    if *adopted && recovering {
                        report.counts.created += 1;
                    } else if *adopted {
                        report.counts.adopted += 1;
                    }
                    tracing::info!(mapping = %name, jira = %key, iid = mirror.iid, adopted, "linked GitLab issue");
                }
                Action::Update { jira, iid, edit } => {
                    match self.edit(project, jira, *iid, edit.clone()).await {
                        Ok(()) => {
                            match edit.state_event {
                                Some(StateEvent::Close) => report.counts.closed += 1,
                                Some(StateEvent::Reopen) => report.counts.reopened += 1,
                                None => report.counts.updated += 1,
                            }
                            tracing::info!(mapping = %name, jira = %key, iid, change = %action.describe(), "updated GitLab issue");
                        }
                        Err(e) => {
                            report.needs_user |= e.exit_code() == 2;
                            failures.insert(key.clone(), format!("{key} (#{iid}): {e}"));
                        }
                    }
                }
            }
        }
        Ok(ambiguous)
    }

    /// PUT an edit and check GitLab did what was asked: it answers 200 even when it ignores a
    /// field the token may not set.
    async fn edit(
        &self,
        project: &Project,
        jira: &JiraIssue,
        iid: u64,
        mut edit: IssueEdit,
    ) -> Result<()> {
        if edit.state_event == Some(StateEvent::Close) && project.can_backdate() {
            // Owners may backdate the close, so VSA's lead time ends when Jira resolved it.
            edit.updated_at = Some(jira.resolved.unwrap_or(jira.updated));
        }
        let after = self.gitlab.edit(project.id, iid, &edit).await?;
        let expected = match edit.state_event {
            Some(StateEvent::Close) => Some(GitlabState::Closed),
            Some(StateEvent::Reopen) => Some(GitlabState::Opened),
            None => None,
        };
        if expected.is_some_and(|s| s != after.state) {
            return Err(Error::NotApplied(format!(
                "GitLab answered 200 but #{iid} in {} did not change state: the token may lack the Planner or Reporter role, or someone changed the issue at the same moment; the next pass checks again",
                project.path
            )));
        }
        Ok(())
    }

    fn warn_if_not_backdated(&self, project: &Project, jira: &JiraIssue, created: &GitlabIssue) {
        let honoured = created
            .created_at
            .is_some_and(|t| (t - jira.created).num_seconds().abs() < 60);
        if !honoured {
            if project.can_backdate() {
                tracing::warn!(project = %project.path, "GitLab ignored created_at although the token looks like an Owner's: VSA lead time will count from mirror time");
            } else {
                tracing::warn!(project = %project.path, access_level = project.access_level, "the token's role cannot set created_at: VSA lead time counts from when the mirror created the issue; use an Owner token to backdate");
            }
        }
    }
}
