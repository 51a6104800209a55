//! Applying a plan: the only code that writes to GitLab. The actions of one page run as jobs,
//! one per Jira issue, up to `gitlab.concurrency` at a time (the client's own limit bounds the
//! requests of all mappings together). Before any create of the page is sent, the page's
//! intents are recorded in one transaction; after the jobs, their outcomes (mirrors, versions
//! applied, intents of creates that surely did not happen) in another. A crash between the two
//! leaves intents, so the next pass looks the issues up by marker instead of creating them
//! again. Every edit's answer is checked: GitLab answers 200 even when it ignores a field.
//! The page's Jira facts for `report` go into the same transaction as its outcomes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use futures_util::stream::{self, StreamExt};

use super::{Reconciler, Target};
use crate::domain::{
    self, Counts, GitlabIid, GitlabIssue, GoneReason, IssueEdit, JiraId, JiraIssue, JiraKey,
    Mirror, StateEvent,
};
use crate::error::{Error, Result};
use crate::gitlab::NewIssue;
use crate::http::ApiErrorKind;
use crate::plan::{Action, LabelStep, Plan};
use crate::store::{PageWrite, Store};

/// What applying plans did.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// Actions carried out, by kind (`unchanged` and `jira_seen` stay 0 here).
    pub counts: Counts,
    /// Jira key → why its action failed.
    pub failures: BTreeMap<JiraKey, String>,
    /// Creates without a reliable answer: looked up by marker before anything else.
    pub lost: Vec<JiraIssue>,
    /// A failure only the user can fix (a rejected token, a missing permission).
    pub needs_user: bool,
    /// GitLab refused the token, a permission or the project on some action.
    pub gitlab_refused: bool,
    pub notes: Vec<String>,
}

impl Applied {
    /// Add a later page's (or round's) results to these.
    pub fn absorb(&mut self, later: Applied) {
        self.counts += &later.counts;
        self.failures.extend(later.failures);
        self.lost.extend(later.lost);
        self.needs_user |= later.needs_user;
        self.gitlab_refused |= later.gitlab_refused;
        self.notes.extend(later.notes);
    }
}

/// The actions for one Jira issue, in the planner's order.
struct Job {
    key: JiraKey,
    actions: Vec<Action>,
}

/// What one job did.
struct Done {
    key: JiraKey,
    counts: Counts,
    failure: Option<String>,
    error_needs_user: bool,
    gitlab_refused: bool,
    /// A link to save (a create, an adoption, a new key), with the Jira version it carries.
    /// Saved even when a stop cuts the job short: the GitLab issue is there and marked.
    mirror: Option<Mirror>,
    /// The Jira version now true in GitLab, for a mirror already linked.
    applied: Option<(JiraId, chrono::DateTime<chrono::Utc>)>,
    /// A create that surely did not happen: its intent goes.
    cleared_intent: Option<JiraId>,
    /// A create without a reliable answer.
    lost: Option<JiraIssue>,
    /// A Jira issue that left the mapping, its policy applied.
    gone: Option<(JiraId, GoneReason)>,
}

impl Done {
    fn new(key: JiraKey) -> Self {
        Done {
            key,
            counts: Counts::default(),
            failure: None,
            error_needs_user: false,
            gitlab_refused: false,
            mirror: None,
            applied: None,
            cleared_intent: None,
            lost: None,
            gone: None,
        }
    }

    fn fail(&mut self, message: String, error: Option<&Error>) {
        if error.is_some_and(|e| e.cause() == crate::cause::Cause::Stopped) {
            // Not sent because a stop came: no failure, and nothing applied; the next pass
            // does it.
            if let Some(link) = self.mirror.as_mut() {
                link.applied = None;
            }
            self.applied = None;
            return;
        }
        self.error_needs_user |= error.is_some_and(Error::needs_user);
        self.gitlab_refused |= error.is_some_and(Error::is_gitlab_refusal);
        self.failure = Some(message);
    }

    /// `jira`'s version is now true in GitLab: saved with the link if one is pending.
    fn version_applied(&mut self, jira: &JiraIssue) {
        match self.mirror.as_mut() {
            Some(link) => link.applied = Some(jira.updated),
            None => self.applied = Some((jira.id, jira.updated)),
        }
    }

    /// An edit failed: the link is still right, but no version of this pass is applied.
    fn edit_failed(&mut self, message: String, error: &Error) {
        self.fail(message, Some(error));
        if let Some(link) = self.mirror.as_mut() {
            link.applied = None;
        }
        self.applied = None;
    }
}

impl Reconciler {
    /// Carry out one page's plan, and record its outcomes with what `recorded` holds (the
    /// page's Jira facts). `recovering`: the second look after creates whose answer was lost,
    /// when a create must not be sent again.
    pub(super) async fn apply(
        &self,
        store: &Store,
        target: &Target<'_>,
        plan: Plan,
        recorded: PageWrite,
        recovering: bool,
    ) -> Result<Applied> {
        let name = &target.name;
        if !recovering {
            let creates: Vec<(JiraId, &JiraKey)> = plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Create { jira, .. } => Some((jira.id, &jira.key)),
                    _ => None,
                })
                .collect();
            // Intents first: if the process dies after GitLab commits an issue but before its
            // mirror is saved, the next pass finds it by its marker.
            store.intents().record(name, &creates)?;
        }
        let mut write = recorded;
        write.applied.extend(plan.settled);
        let mut out = Applied::default();
        out.notes
            .extend(self.ensure_status_labels(target, &plan.actions).await);
        // The job futures are made first, then driven `gitlab.concurrency` at a time.
        let jobs: Vec<_> = jobs(plan.actions)
            .into_iter()
            .map(|job| self.run_job(target, job, recovering))
            .collect();
        let done: Vec<Done> = stream::iter(jobs)
            .buffer_unordered(self.cfg.gitlab.concurrency.max(1))
            .collect()
            .await;
        for d in done {
            out.counts += &d.counts;
            out.needs_user |= d.error_needs_user;
            out.gitlab_refused |= d.gitlab_refused;
            write.mirrors.extend(d.mirror);
            write.applied.extend(d.applied);
            write.cleared_intents.extend(d.cleared_intent);
            write.gone.extend(d.gone);
            out.lost.extend(d.lost);
            if let Some(f) = d.failure {
                out.failures.insert(d.key, f);
            }
        }
        store.commit_page(name, &write)?;
        Ok(out)
    }

    /// One Jira issue's actions, in order; stops at the first failure.
    async fn run_job(&self, target: &Target<'_>, job: Job, recovering: bool) -> Done {
        let key = job.key;
        let mut done = Done::new(key.clone());
        for action in job.actions {
            if self.stopping() {
                match &action {
                    // A first create not sent yet: nothing can have landed, its intent goes.
                    Action::Create { jira, .. } if !recovering => {
                        done.cleared_intent = Some(jira.id);
                    }
                    // A create whose answer was lost may still land: its intent stays, so the
                    // next pass looks for it by marker before creating.
                    Action::Create { .. } => done.fail(
                        format!("{key}: GitLab gave no reliable answer to its create; the next pass looks for it by marker before creating"),
                        None,
                    ),
                    _ => {}
                }
                // Actions remain: the version is not applied yet. A link found or adopted is
                // still saved, without a version, so the next pass re-checks the issue.
                done.applied = None;
                if let Some(link) = done.mirror.as_mut() {
                    link.applied = None;
                }
                return done;
            }
            match action {
                Action::Create { .. } if recovering => {
                    // The marker scan did not find it, but the lost request may still land: a
                    // second create now could be a duplicate. The intent stays recorded, so the
                    // next pass scans again and creates only if it is still missing.
                    done.fail(
                        format!("{key}: GitLab gave no reliable answer to its create and the issue is not there (yet); the next pass looks for it again before creating"),
                        None,
                    );
                    return done;
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
                    let mut labels = target.mapping.labels.clone();
                    labels.extend(status_label);
                    let new = NewIssue {
                        title,
                        description,
                        labels,
                        created_at: target.project.can_backdate().then_some(jira.created),
                        issue_type,
                    };
                    self.create(target, &key, jira, new, &steps, close, &mut done)
                        .await;
                    return done;
                }
                Action::AdoptRecipe { jira, mirror } => {
                    if let Err(e) = self.adopt_recipe(target, &jira, &mirror).await {
                        done.fail(
                            format!(
                                "{key} (#{}): adopting the recipe's issue failed: {}",
                                mirror.iid,
                                e.report()
                            ),
                            Some(&e),
                        );
                        return done;
                    }
                    done.counts.adopted += 1;
                    done.mirror = Some(mirror);
                }
                Action::Relabel { jira, iid, steps } => {
                    match self.relabel(&target.project, iid, &steps).await {
                        Ok(()) => {
                            done.counts.updated += 1;
                            tracing::info!(jira = %key, iid = iid.get(), steps = steps.len(), "replayed status labels");
                            done.version_applied(&jira);
                        }
                        Err(e) => {
                            done.edit_failed(format!("{key} (#{iid}): {}", e.report()), &e);
                            break;
                        }
                    }
                }
                Action::MarkGone {
                    mirror,
                    reason,
                    edit,
                } => {
                    match self.mark_gone(target, &mirror, reason, edit.as_ref()).await {
                        Ok(()) => {
                            match edit.map(|e| e.state_event) {
                                Some(Some(StateEvent::Close)) => done.counts.closed += 1,
                                Some(_) => done.counts.updated += 1,
                                None => {}
                            }
                            done.gone = Some((mirror.jira_id, reason));
                        }
                        Err(e) => {
                            // Not remembered: the next full pass tries again.
                            done.fail(format!("{key} (#{}): {}", mirror.iid, e.report()), Some(&e));
                        }
                    }
                    return done;
                }
                Action::Link { mirror, adopted } => {
                    // A lost create found by its marker was created by this pass.
                    if adopted && recovering {
                        done.counts.created += 1;
                    } else if adopted {
                        done.counts.adopted += 1;
                    }
                    tracing::info!(jira = %key, iid = mirror.iid.get(), adopted, "linked GitLab issue");
                    done.mirror = Some(mirror);
                }
                Action::Update { jira, iid, edit } => {
                    let change = Action::Update {
                        jira: jira.clone(),
                        iid,
                        edit: edit.clone(),
                    }
                    .describe();
                    let state_event = edit.state_event;
                    match self.edit(target, &jira, iid, edit).await {
                        Ok(()) => {
                            match state_event {
                                Some(StateEvent::Close) => done.counts.closed += 1,
                                Some(StateEvent::Reopen) => done.counts.reopened += 1,
                                None => done.counts.updated += 1,
                            }
                            tracing::info!(jira = %key, iid = iid.get(), change = %change, "updated GitLab issue");
                            done.version_applied(&jira);
                        }
                        Err(e) => {
                            done.edit_failed(format!("{key} (#{iid}): {}", e.report()), &e);
                            break;
                        }
                    }
                }
            }
        }
        done
    }

    /// Create one issue, check its type and replay its status labels, and close it if Jira
    /// says done.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        target: &Target<'_>,
        key: &JiraKey,
        jira: JiraIssue,
        new: NewIssue,
        steps: &[LabelStep],
        close: bool,
        done: &mut Done,
    ) {
        let project = &target.project;
        let created = match self.gitlab.create(project.id, &new).await {
            Ok(g) => g,
            Err(e) if e.is_ambiguous() => {
                done.fail(
                    format!("{key}: {e}; the next look-up by marker decides"),
                    None,
                );
                done.lost = Some(jira);
                return;
            }
            Err(e) if matches!(e.kind, ApiErrorKind::Stopped) => {
                done.cleared_intent = Some(jira.id);
                return;
            }
            Err(e) => {
                done.cleared_intent = Some(jira.id);
                let e = Error::from(e);
                done.fail(format!("{key}: create failed: {}", e.report()), Some(&e));
                return;
            }
        };
        done.counts.created += 1;
        tracing::info!(jira = %key, iid = created.iid.get(), "created GitLab issue");
        if !target.backdate_checked.swap(true, Ordering::SeqCst) {
            warn_if_not_backdated(target, &jira, &created);
        }
        let mut mirror = Mirror {
            jira_id: jira.id,
            jira_key: jira.key.clone(),
            iid: created.iid,
            applied: Some(jira.updated),
        };
        if let Err(e) = self
            .finish_create(project, &created, &new.issue_type, steps)
            .await
        {
            // The mirror stands; the next pass compares it again.
            mirror.applied = None;
            done.fail(
                format!("{key}: created as #{} but {}", created.iid, e.report()),
                Some(&e),
            );
        }
        if close {
            let edit = IssueEdit {
                state_event: Some(StateEvent::Close),
                ..IssueEdit::default()
            };
            if let Err(e) = self.edit(target, &jira, created.iid, edit).await {
                mirror.applied = None;
                done.fail(
                    format!(
                        "{key}: created as #{} but closing failed: {}",
                        created.iid,
                        e.report()
                    ),
                    Some(&e),
                );
            }
        }
        done.mirror = Some(mirror);
    }

    /// PUT an edit and check GitLab did what was asked: it answers 200 even when it ignores a
    /// field the token may not set.
    async fn edit(
        &self,
        target: &Target<'_>,
        jira: &JiraIssue,
        iid: GitlabIid,
        mut edit: IssueEdit,
    ) -> Result<()> {
        let project = &target.project;
        if edit.description.is_some() {
            // A new link (the key changed, or someone edited it away): the plan carries no
            // descriptions, so read it now and keep what else it says (an adopted recipe
            // issue's text, notes someone wrote), replacing only the link and marker.
            let existing = self.gitlab.issue_description(project.id, iid).await?;
            edit.description = Some(domain::adopted_description(
                &existing,
                self.jira.base_url(),
                jira,
            ));
        }
        if edit.state_event == Some(StateEvent::Close) && project.can_backdate() {
            // Owners may backdate the close, so VSA's lead time ends when Jira resolved it.
            edit.updated_at = Some(jira.resolved.unwrap_or(jira.updated));
        }
        let after = self.gitlab.edit(project.id, iid, &edit).await?;
        self.verify(project, iid, &edit, &after)
    }
}

/// Group a page's actions by Jira issue, keeping the planner's order within and across issues
/// (so creates go out roughly in Jira's order).
fn jobs(actions: Vec<Action>) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut index: HashMap<JiraKey, usize> = HashMap::new();
    for action in actions {
        let key = action.jira_key().clone();
        match index.get(&key) {
            Some(&i) => jobs[i].actions.push(action),
            None => {
                index.insert(key.clone(), jobs.len());
                jobs.push(Job {
                    key,
                    actions: vec![action],
                });
            }
        }
    }
    jobs
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
