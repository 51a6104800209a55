//! Applying a plan: the only code that writes to GitLab. A create's intent is recorded before
//! it is sent and the mirror after, so a crash or a lost answer never becomes a duplicate;
//! every edit's answer is checked, since GitLab answers 200 even when it ignores a field.

use std::collections::{BTreeMap, HashSet};

use super::{Reconciler, Target};
use crate::domain::{GitlabIssue, IssueEdit, JiraIssue, Mirror, StateEvent};
use crate::error::{Error, Result};
use crate::gitlab::{NewIssue, Project};
use crate::plan::Action;
use crate::store::{Counts, Store};

/// What applying a plan did.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// Actions carried out, by kind (`unchanged` and `jira_seen` stay 0 here).
    pub counts: Counts,
    /// Jira key → why its action failed.
    pub failures: BTreeMap<String, String>,
    /// Jira ids whose create got no reliable answer: looked up by marker before anything else.
    pub ambiguous: HashSet<String>,
    /// A failure only the user can fix (a rejected token, a missing permission).
    pub needs_user: bool,
    pub notes: Vec<String>,
}

impl Applied {
    /// Add a later round's results to this one's.
    pub fn absorb(&mut self, later: Applied) {
        self.counts.add(&later.counts);
        self.failures.extend(later.failures);
        self.ambiguous = later.ambiguous;
        self.needs_user |= later.needs_user;
        self.notes.extend(later.notes);
    }

    pub(super) fn fail(&mut self, key: &str, message: String, error: Option<&Error>) {
        self.needs_user |= error.is_some_and(Error::needs_user);
        self.failures.insert(key.to_string(), message);
    }
}

impl Reconciler {
    /// Carry out `actions` in order. `recovering`: the second look after creates whose answer
    /// was lost, when a create must not be sent again.
    pub(super) async fn apply(
        &self,
        store: &Store,
        target: &Target<'_>,
        actions: &[Action],
        recovering: bool,
    ) -> Result<Applied> {
        let name = &target.name;
        let project = &target.project;
        let mut out = Applied::default();
        let mut warned_backdate = false;
        out.notes
            .extend(self.ensure_status_labels(target, actions).await);
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
                    out.fail(
                        &key,
                        format!("{key}: GitLab gave no reliable answer to its create and the issue is not there (yet); the next pass looks for it again before creating"),
                        None,
                    );
                }
                Action::Create {
                    jira,
                    title,
                    description,
                    close,
                    status_label,
                    issue_type,
                    steps,
                } => {
                    // Intent first: if the process dies after GitLab commits the issue but
                    // before the mirror is saved, the next pass finds it by its marker.
                    store.record_intent(name, &jira.id, &jira.key)?;
                    let mut labels = target.mapping.labels.clone();
                    labels.extend(status_label.iter().cloned());
                    let new = NewIssue {
                        title: title.clone(),
                        description: description.clone(),
                        labels,
                        created_at: project.can_backdate().then_some(jira.created),
                        issue_type: issue_type.clone(),
                    };
                    let created = match self.gitlab.create(project.id, &new).await {
                        Ok(g) => g,
                        Err(e) if e.is_ambiguous() => {
                            out.ambiguous.insert(jira.id.clone());
                            out.fail(
                                &key,
                                format!("{key}: {e}; the next look-up by marker decides"),
                                None,
                            );
                            continue;
                        }
                        Err(e) => {
                            store.clear_intent(name, &jira.id)?;
                            let message = format!("{key}: create failed: {e}");
                            out.fail(&key, message, Some(&e.into()));
                            continue;
                        }
                    };
                    store.save_mirror(
                        name,
                        &Mirror {
                            jira_id: jira.id.clone(),
                            jira_key: jira.key.clone(),
                            iid: created.iid,
                        },
                    )?;
                    out.failures.remove(&key);
                    out.counts.created += 1;
                    tracing::info!(jira = %key, iid = created.iid, "created GitLab issue");
                    if !warned_backdate {
                        warned_backdate = true;
                        self.warn_if_not_backdated(project, jira, &created);
                    }
                    if let Err(e) = self
                        .finish_create(project, jira, &created, issue_type, steps)
                        .await
                    {
                        let message = format!("{key}: created as #{} but {e}", created.iid);
                        out.fail(&key, message, Some(&e));
                    }
                    if *close {
                        let edit = IssueEdit {
                            state_event: Some(StateEvent::Close),
                            ..IssueEdit::default()
                        };
                        if let Err(e) = self.edit(project, jira, created.iid, edit).await {
                            let message = format!(
                                "{key}: created as #{} but closing failed: {e}",
                                created.iid
                            );
                            out.fail(&key, message, Some(&e));
                        }
                    }
                }
                Action::Link { mirror, adopted } => {
                    store.save_mirror(name, mirror)?;
                    out.failures.remove(&key);
                    // A lost create found by its marker was created by this pass.
                    if *adopted && recovering {
                        out.counts.created += 1;
                    } else if *adopted {
                        out.counts.adopted += 1;
                    }
                    tracing::info!(jira = %key, iid = mirror.iid, adopted, "linked GitLab issue");
                }
                Action::AdoptRecipe { jira, mirror } => {
                    self.adopt_recipe(store, target, jira, mirror, &mut out)
                        .await?;
                }
                Action::Relabel { jira, iid, steps } => {
                    match self.relabel(project, jira, *iid, steps).await {
                        Ok(()) => out.counts.updated += 1,
                        Err(e) => out.fail(&key, format!("{key} (#{iid}): {e}"), Some(&e)),
                    }
                }
                Action::MarkGone {
                    mirror,
                    reason,
                    edit,
                } => {
                    self.mark_gone(store, target, mirror, *reason, edit.as_ref(), &mut out)
                        .await?;
                }
                Action::Update { jira, iid, edit } => {
                    match self.edit(project, jira, *iid, edit.clone()).await {
                        Ok(()) => {
                            match edit.state_event {
                                Some(StateEvent::Close) => out.counts.closed += 1,
                                Some(StateEvent::Reopen) => out.counts.reopened += 1,
                                None => out.counts.updated += 1,
                            }
                            tracing::info!(jira = %key, iid, change = %action.describe(), "updated GitLab issue");
                        }
                        Err(e) => out.fail(&key, format!("{key} (#{iid}): {e}"), Some(&e)),
                    }
                }
            }
        }
        Ok(out)
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
        self.verify(project, iid, &edit, &after)
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
