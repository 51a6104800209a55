//! Creating a mirror: the create itself (whose answer may be lost: then the look-up by marker
//! decides, never a second create), then checking the type GitLab kept, replaying the status
//! labels, and closing it when Jira says done.

use std::sync::atomic::Ordering;

use super::apply::Done;
use super::outcome::{ActionFailure, Outcome, Unanswered};
use super::{Reconciler, Target};
use crate::domain::{GitlabIssue, IssueEdit, JiraIssue, Mirror, SetFields, StateEvent};
use crate::error::Error;
use crate::gitlab::NewIssue;
use crate::http::ApiErrorKind;
use crate::plan::{Action, LabelStep};

/// A planned create, as it is sent.
struct Create {
    jira: JiraIssue,
    new: NewIssue,
    steps: Vec<LabelStep>,
    close: bool,
    /// Jira's fields it is created with, recorded as set once it exists.
    fields: SetFields,
}

impl Create {
    fn of(action: Action, target: &Target<'_>) -> Option<Create> {
        let Action::Create {
            jira,
            title,
            description,
            close,
            status_label,
            issue_type,
            steps,
            fields,
            ..
        } = action
        else {
            return None;
        };
        let mut labels = target.mapping.labels.clone();
        labels.extend(status_label);
        labels.extend(fields.labels.iter().cloned());
        let new = NewIssue {
            title,
            description,
            labels,
            created_at: target.project.can_backdate().then_some(jira.created),
            issue_type,
            due_date: fields.due,
            assignee_ids: fields.assignee.into_iter().collect(),
            milestone_id: None,
        };
        Some(Create {
            jira,
            new,
            steps,
            close,
            fields,
        })
    }
}

impl Reconciler {
    /// Create one issue (`action` is an `Action::Create`), check its type and replay its status
    /// labels, and close it if Jira says done.
    pub(super) async fn create(&self, target: &Target<'_>, action: Action, done: &mut Done) {
        let Some(mut c) = Create::of(action, target) else {
            return;
        };
        c.new.milestone_id = self.milestone_id_for(target, &c.jira);
        let Some(created) = self.send_create(target, &c, done).await else {
            return;
        };
        let iid = created.iid;
        done.ended(Outcome::Created(iid));
        if target.rules.mirrors_fields() {
            done.set_fields = Some((c.jira.id, c.fields.clone()));
        }
        tracing::info!(jira = %c.jira.key, iid = iid.get(), "created GitLab issue");
        if !target.backdate_checked.swap(true, Ordering::SeqCst) {
            warn_if_not_backdated(target, &c.jira, &created);
        }
        let mut mirror = Mirror {
            jira_id: c.jira.id,
            jira_key: c.jira.key.clone(),
            iid,
            applied: Some(c.jira.updated),
        };
        if let Err(e) = self
            .finish_create(&target.project, &created, &c.new.issue_type, &c.steps)
            .await
        {
            // The mirror stands; the next pass compares it again.
            mirror.applied = None;
            done.fail(ActionFailure::AfterCreate(iid, e));
        }
        if c.close {
            let edit = IssueEdit {
                state_event: Some(StateEvent::Close),
                ..IssueEdit::default()
            };
            if let Err(e) = self.edit(target, &c.jira, iid, edit).await {
                mirror.applied = None;
                done.fail(ActionFailure::CloseAfterCreate(iid, e));
            }
        }
        done.mirror = Some(mirror);
    }

    /// The create request: the issue GitLab made, or `None` when it made none for sure (the
    /// intent goes) or may have (no reliable answer: the look-up by marker decides).
    async fn send_create(
        &self,
        target: &Target<'_>,
        c: &Create,
        done: &mut Done,
    ) -> Option<GitlabIssue> {
        match self.gitlab.create(target.project.id, &c.new).await {
            Ok(g) => Some(g),
            Err(e) if e.is_ambiguous() => {
                done.ended(Outcome::Unanswered(Unanswered {
                    jira: Box::new(c.jira.clone()),
                    error: e,
                }));
                None
            }
            Err(e) if matches!(e.kind, ApiErrorKind::Stopped) => {
                done.cleared_intent = Some(c.jira.id);
                None
            }
            Err(e) => {
                done.cleared_intent = Some(c.jira.id);
                done.fail(ActionFailure::Create(Error::from(e)));
                None
            }
        }
    }
}

fn warn_if_not_backdated(target: &Target<'_>, jira: &JiraIssue, created: &GitlabIssue) {
    let project = &target.project;
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
