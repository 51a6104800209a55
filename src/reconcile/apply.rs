//! Applying a plan: the only code that writes to GitLab. The actions of one page run as jobs,
//! one per Jira issue, up to `gitlab.concurrency` at a time (the client's own limit bounds the
//! requests of all mappings together). Before any create of the page is sent, the page's
//! intents are recorded in one transaction; after the jobs, what they did (mirrors, versions
//! applied, intents of creates that surely did not happen) in another. A crash between the two
//! leaves intents, so the next pass looks the issues up by marker instead of creating them
//! again. Every edit's answer is checked: GitLab answers 200 even when it ignores a field.
//! The page's Jira facts for `report` go into the same transaction. Each action ends as one
//! [`Outcome`]; a job's outcomes add up into its tally.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::outcome::{ActionFailure, Failure, Outcome, Tally};
use super::{Reconciler, Target};
use crate::domain::{
    self, GitlabIid, GoneReason, IssueEdit, JiraId, JiraIssue, JiraKey, Mirror, SetFields,
    StateEvent,
};
use crate::error::Result;
use crate::plan::{Action, LabelStep, Plan};
use crate::store::{PageWrite, Store};

/// The actions for one Jira issue, in the planner's order.
struct Job {
    key: JiraKey,
    actions: Vec<Action>,
}

/// What one job did: how its actions ended, and what to record of them.
pub(super) struct Done {
    key: JiraKey,
    pub tally: Tally,
    /// A link to save (a create, an adoption, a new key), with the Jira version it carries.
    /// Saved even when a stop cuts the job short: the GitLab issue is there and marked.
    pub mirror: Option<Mirror>,
    /// The Jira version now true in GitLab, for a mirror already linked.
    applied: Option<(JiraId, DateTime<Utc>)>,
    /// A create that surely did not happen: its intent goes.
    pub cleared_intent: Option<JiraId>,
    /// A Jira issue that left the mapping, its policy applied.
    gone: Option<(JiraId, GoneReason)>,
    /// Jira's fields now on the mirror (`labels_from`, `due_date`), as written.
    pub set_fields: Option<(JiraId, SetFields)>,
}

/// Whether a job goes on to its next action.
enum Next {
    Continue,
    Stop,
}

impl Done {
    fn new(key: JiraKey) -> Self {
        Done {
            key,
            tally: Tally::default(),
            mirror: None,
            applied: None,
            cleared_intent: None,
            gone: None,
            set_fields: None,
        }
    }

    pub fn ended(&mut self, outcome: Outcome) {
        self.tally += outcome;
    }

    /// The action failed; one not sent because a stop came is no failure, and leaves nothing
    /// applied (the next pass does it).
    pub fn fail(&mut self, why: ActionFailure) {
        if why.is_stop() {
            self.unapply();
            return;
        }
        let failure = Failure::Action(self.key.clone(), why);
        self.tally += Outcome::Failed(failure);
    }

    /// No version of this pass is applied: a link found or adopted is still saved, without a
    /// version, so the next pass compares the issue again.
    fn unapply(&mut self) {
        if let Some(link) = self.mirror.as_mut() {
            link.applied = None;
        }
        self.applied = None;
    }

    /// `jira`'s version is now true in GitLab: saved with the link if one is pending.
    fn version_applied(&mut self, jira: &JiraIssue) {
        match self.mirror.as_mut() {
            Some(link) => link.applied = Some(jira.updated),
            None => self.applied = Some((jira.id, jira.updated)),
        }
    }

    /// An edit failed: the link is still right, but no version of this pass is applied.
    fn edit_failed(&mut self, why: ActionFailure) -> Next {
        self.fail(why);
        self.unapply();
        Next::Stop
    }

    /// What to record of the job, into the page's write; what it did.
    fn record(self, write: &mut PageWrite) -> Tally {
        write.mirrors.extend(self.mirror);
        write.applied.extend(self.applied);
        write.cleared_intents.extend(self.cleared_intent);
        write.gone.extend(self.gone);
        write.set_fields.extend(self.set_fields);
        self.tally
    }
}

impl Reconciler {
    /// Carry out one page's plan, and record what it did with what `recorded` holds (the
    /// page's Jira facts). `recovering`: the second look after creates whose answer was lost,
    /// when a create must not be sent again.
    pub(super) async fn apply(
        &self,
        store: &Store,
        target: &Target<'_>,
        plan: Plan,
        recorded: PageWrite,
        recovering: bool,
    ) -> Result<Tally> {
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
            store.intents().record(&target.name, &creates)?;
        }
        let mut write = recorded;
        write.applied.extend(plan.settled);
        let mut actions = plan.actions;
        let milestones = self.resolve_milestones(target, &mut actions).await;
        let mut tally = self
            .board_before_labels(super::Mode::Apply(store), target, &actions)
            .await;
        tally += milestones;
        tally
            .notes
            .extend(self.ensure_status_labels(target, &actions).await);
        // The job futures are made first, then driven `gitlab.concurrency` at a time.
        let jobs: Vec<_> = jobs(actions)
            .into_iter()
            .map(|job| self.run_job(target, job, recovering))
            .collect();
        let done: Vec<Done> = stream::iter(jobs)
            .buffer_unordered(self.cfg.gitlab.concurrency.max(1))
            .collect()
            .await;
        for d in done {
            tally += d.record(&mut write);
        }
        store.commit_page(&target.name, &write)?;
        Ok(tally)
    }

    /// One Jira issue's actions, in order; stops at the first failure.
    async fn run_job(&self, target: &Target<'_>, job: Job, recovering: bool) -> Done {
        let mut done = Done::new(job.key);
        for action in job.actions {
            if self.stopping() {
                stop_before(&action, recovering, &mut done);
                return done;
            }
            let next = self.run_action(target, action, recovering, &mut done).await;
            if let Next::Stop = next {
                break;
            }
        }
        done
    }

    async fn run_action(
        &self,
        target: &Target<'_>,
        action: Action,
        recovering: bool,
        done: &mut Done,
    ) -> Next {
        match action {
            // The marker scan did not find it, but the lost request may still land: a second
            // create now could be a duplicate. The intent stays recorded, so the next pass
            // scans again and creates only if it is still missing.
            Action::Create { .. } if recovering => {
                done.fail(ActionFailure::StillUnanswered);
                Next::Stop
            }
            Action::Create { .. } => {
                self.create(target, action, done).await;
                Next::Stop
            }
            Action::AdoptRecipe { jira, mirror } => {
                self.adopt_recipe_issue(target, &jira, mirror, done).await
            }
            Action::Relabel { jira, iid, steps } => {
                self.relabel_issue(target, &jira, iid, &steps, done).await
            }
            Action::MarkGone {
                mirror,
                reason,
                edit,
            } => {
                self.mark_gone_issue(target, mirror, reason, edit, done)
                    .await
            }
            Action::Link { mirror, adopted } => {
                link(mirror, adopted, recovering, done);
                Next::Continue
            }
            Action::Update { jira, iid, edit } => self.update(target, &jira, iid, edit, done).await,
        }
    }

    async fn adopt_recipe_issue(
        &self,
        target: &Target<'_>,
        jira: &JiraIssue,
        mirror: Mirror,
        done: &mut Done,
    ) -> Next {
        if let Err(e) = self.adopt_recipe(target, jira, &mirror).await {
            done.fail(ActionFailure::AdoptRecipe(mirror.iid, e));
            return Next::Stop;
        }
        done.ended(Outcome::Adopted(mirror.iid));
        done.mirror = Some(mirror);
        Next::Continue
    }

    async fn relabel_issue(
        &self,
        target: &Target<'_>,
        jira: &JiraIssue,
        iid: GitlabIid,
        steps: &[LabelStep],
        done: &mut Done,
    ) -> Next {
        if let Err(e) = self.relabel(&target.project, iid, steps).await {
            return done.edit_failed(ActionFailure::Edit(iid, e));
        }
        done.ended(Outcome::Edited(iid, vec![domain::Field::Labels]));
        tracing::info!(jira = %jira.key, iid = iid.get(), steps = steps.len(), "replayed status labels");
        done.version_applied(jira);
        Next::Continue
    }

    /// The policy's edit for an issue that left the mapping; remembered once done (a failure
    /// is not: the next full pass tries again).
    async fn mark_gone_issue(
        &self,
        target: &Target<'_>,
        mirror: Mirror,
        reason: GoneReason,
        edit: Option<IssueEdit>,
        done: &mut Done,
    ) -> Next {
        let iid = mirror.iid;
        if let Err(e) = self.mark_gone(target, &mirror, reason, edit.as_ref()).await {
            done.fail(ActionFailure::Edit(iid, e));
            return Next::Stop;
        }
        done.ended(match edit {
            Some(e) if e.state_event == Some(StateEvent::Close) => Outcome::Closed(iid),
            Some(e) => Outcome::Edited(iid, e.fields()),
            None => Outcome::LeftAlone(iid),
        });
        done.gone = Some((mirror.jira_id, reason));
        Next::Stop
    }

    async fn update(
        &self,
        target: &Target<'_>,
        jira: &JiraIssue,
        iid: GitlabIid,
        edit: IssueEdit,
        done: &mut Done,
    ) -> Next {
        let change = crate::plan::describe_update(&jira.key, iid, &edit);
        let (state_event, fields) = (edit.state_event, edit.fields());
        if let Err(e) = self.edit(target, jira, iid, edit).await {
            return done.edit_failed(ActionFailure::Edit(iid, e));
        }
        done.ended(match state_event {
            Some(StateEvent::Close) => Outcome::Closed(iid),
            Some(StateEvent::Reopen) => Outcome::Reopened(iid),
            None => Outcome::Edited(iid, fields),
        });
        tracing::info!(jira = %jira.key, iid = iid.get(), change = %change, "updated GitLab issue");
        if target.rules.mirrors_fields() {
            // Whatever the edit held, the mirror's fields now agree with this version.
            let people = target.assignable();
            let now = crate::plan::fields::wanted(&target.rules, jira, &people);
            done.set_fields = Some((jira.id, now));
        }
        done.version_applied(jira);
        Next::Continue
    }

    /// PUT an edit and check GitLab did what was asked: it answers 200 even when it ignores a
    /// field the token may not set.
    pub(super) async fn edit(
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

/// A stop came before `action` was sent. A first create not sent yet cannot have landed: its
/// intent goes. A create whose answer was lost may still land: its intent stays, so the next
/// pass looks for it by marker before creating. Actions remain: the version is not applied.
fn stop_before(action: &Action, recovering: bool, done: &mut Done) {
    match action {
        Action::Create { jira, .. } if !recovering => done.cleared_intent = Some(jira.id),
        Action::Create { .. } => done.fail(ActionFailure::UnansweredAtStop),
        _ => {}
    }
    done.unapply();
}

/// Record the link to an existing issue: found by its marker, or under a new key. A lost
/// create found by its marker was created by this pass.
fn link(mirror: Mirror, adopted: bool, recovering: bool, done: &mut Done) {
    let iid = mirror.iid;
    done.ended(match (adopted, recovering) {
        (true, true) => Outcome::Created(iid),
        (true, false) => Outcome::Adopted(iid),
        (false, _) => Outcome::Relinked(iid),
    });
    tracing::info!(jira = %mirror.jira_key, iid = iid.get(), adopted, "linked GitLab issue");
    done.mirror = Some(mirror);
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
