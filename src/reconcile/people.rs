//! Who a Jira assignee is in GitLab (`assignees`), looked up once per pass and mapping: the
//! `[users]` table first (by accountId, or by e-mail when Jira shows it), then Jira's visible
//! e-mail matched to exactly one GitLab user with that public e-mail. The user must be a
//! member of the project (GitLab drops other assignees silently). Anyone else is never
//! guessed: the mirror stays unassigned and the pass summary names them.

use std::collections::HashMap;

use super::{Reconciler, Target};
use crate::domain::{JiraIssue, JiraUser};
use crate::error::Result;
use crate::gitlab::Project;

/// What a Jira assignee resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A GitLab user id that may be assigned.
    User(u64),
    /// Why not (for the summary and `check`).
    Nobody(String),
}

impl Target<'_> {
    /// The assignees resolved so far that map to a GitLab member, by Jira identity.
    pub(super) fn assignable(&self) -> HashMap<String, u64> {
        let people = crate::lock_unpoisoned(&self.people);
        people
            .iter()
            .filter_map(|(who, r)| match r {
                Resolved::User(id) => Some((who.clone(), *id)),
                Resolved::Nobody(_) => None,
            })
            .collect()
    }
}

impl Reconciler {
    /// Resolve the assignees of `issues` not resolved yet in this pass; a note naming those
    /// newly found to have no GitLab user ("2 Jira assignees have no GitLab user: …").
    pub(super) async fn resolve_people(
        &self,
        target: &Target<'_>,
        issues: impl Iterator<Item = &JiraIssue>,
    ) -> Result<Option<String>> {
        if !target.rules.assignees {
            return Ok(None);
        }
        let mut nobody = Vec::new();
        for user in issues.filter_map(|j| j.planning.assignee.as_ref()) {
            let Some(who) = user.identity() else { continue };
            if crate::lock_unpoisoned(&target.people).contains_key(&who) {
                continue;
            }
            let resolved = self.resolve(&target.project, user).await?;
            if let Resolved::Nobody(why) = &resolved {
                nobody.push(format!("{} ({why})", user.describe()));
            }
            crate::lock_unpoisoned(&target.people).insert(who, resolved);
        }
        Ok((!nobody.is_empty()).then(|| {
            let n = crate::domain::plural(
                nobody.len() as u64,
                "Jira assignee has",
                "Jira assignees have",
            );
            let stay = if nobody.len() == 1 { "stays" } else { "stay" };
            format!(
                "{n} no GitLab user and {stay} unassigned: {}",
                nobody.join("; ")
            )
        }))
    }

    /// Of `users` (Jira's assignable people, for `check`), those who would stay unassigned in
    /// `project`, each with why, resolved exactly as a pass resolves an assignee.
    pub async fn unassignable(
        &self,
        project: &Project,
        users: &[JiraUser],
    ) -> Result<Vec<(JiraUser, String)>> {
        let mut out = Vec::new();
        for user in users {
            if let Resolved::Nobody(why) = self.resolve(project, user).await? {
                out.push((user.clone(), why));
            }
        }
        Ok(out)
    }

    async fn resolve(&self, project: &Project, user: &JiraUser) -> Result<Resolved> {
        let gitlab = &self.gitlab;
        let users = &self.cfg.users;
        let email = user.email.as_ref().map(|m| m.trim().to_lowercase());
        let listed = (user.account_id.as_ref().and_then(|id| users.get(id)))
            .or_else(|| email.as_ref().and_then(|m| users.get(m)));
        let id = match (listed, &email) {
            (Some(name), _) => match gitlab.user_id(name).await? {
                Some(id) => id,
                None => {
                    return Ok(Resolved::Nobody(format!(
                        "[users] names {name}, who is not a GitLab user"
                    )))
                }
            },
            (None, Some(mail)) => match gitlab.users_with_email(mail).await?.as_slice() {
                [id] => *id,
                [] => {
                    return Ok(Resolved::Nobody(
                        "not in [users], and no GitLab user shows that e-mail publicly".into(),
                    ))
                }
                _ => {
                    return Ok(Resolved::Nobody(
                        "not in [users], and several GitLab users show that e-mail".into(),
                    ))
                }
            },
            (None, None) => {
                return Ok(Resolved::Nobody(
                    "not in [users], and Jira hides the e-mail".into(),
                ))
            }
        };
        Ok(if gitlab.is_member(project.id, id).await? {
            Resolved::User(id)
        } else {
            Resolved::Nobody(format!(
                "GitLab user {id} is not a member of {}",
                project.path
            ))
        })
    }
}
