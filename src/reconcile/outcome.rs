//! What a pass did, as values: each action ends as one [`Outcome`], and outcomes add up with
//! one `+=` into a [`Tally`] — per job, per batch, per mapping (the [`PassReport`] is a
//! mapping's tally with where and when). A failure keeps its error ([`Failure`]): whether it
//! needs a person, whether GitLab refused, and the line printed for it all come from the error,
//! when they are asked for. `reconcile`, `reconcile --json`, the pass history, the metrics,
//! `status` and the status page all read the tally.
//!
//! A new kind of change (a field, an action) gets a variant here and a line in `add_assign`;
//! everything that reads a tally follows.
//!
//! [`PassReport`]: super::PassReport

use std::collections::BTreeMap;
use std::fmt;
use std::ops::AddAssign;

use crate::cause::Cause;
use crate::domain::{Counts, Field, GitlabIid, JiraIssue, JiraKey};
use crate::error::Error;
use crate::http::ApiError;
use crate::plan::{Plan, RecipeTally};

/// How one action ended.
#[derive(Debug)]
pub enum Outcome {
    /// A GitLab issue was created for the Jira issue.
    Created(GitlabIid),
    /// An existing GitLab issue became the Jira issue's mirror (found by its marker, or the
    /// Automation recipe's).
    Adopted(GitlabIid),
    /// Closed, with whatever else its edit changed.
    Closed(GitlabIid),
    /// Reopened, with whatever else its edit changed.
    Reopened(GitlabIid),
    /// Edited otherwise.
    Edited(GitlabIid, Vec<Field>),
    /// The link was recorded under the Jira issue's new key; GitLab was not touched.
    Relinked(GitlabIid),
    /// GitLab already agreed with the Jira issue.
    Unchanged,
    /// Left as it is on purpose (an issue that left the mapping under a policy that changes
    /// nothing, or one that already has what the policy asks).
    LeftAlone(GitlabIid),
    /// A create that got no reliable answer: looked up by marker before anything else.
    Unanswered(Unanswered),
    /// A dry run: what would be done, in words.
    Planned(String),
    Failed(Failure),
}

/// A create without a reliable answer (a timeout after sending, a connection cut): it may
/// have landed. Until the look-up by marker decides, it is neither created nor failed.
#[derive(Debug)]
pub struct Unanswered {
    /// Boxed: an issue with its planning fields is large, and outcomes are many.
    pub jira: Box<JiraIssue>,
    pub error: ApiError,
}

/// Why something failed: the error itself, and what was being done.
#[derive(Debug)]
pub enum Failure {
    /// The pass could not run, or broke off part-way (Jira or GitLab kept failing).
    Pass(Error),
    /// The pass panicked: a bug.
    Panicked(String),
    /// Recording the pass in its history failed.
    History(Error),
    /// One Jira issue's action.
    Action(JiraKey, ActionFailure),
}

/// What one Jira issue's failed action was doing.
#[derive(Debug)]
pub enum ActionFailure {
    /// GitLab refused the create.
    Create(Error),
    /// No reliable answer to the create, and no look-up by marker could follow in this pass.
    Unanswered(ApiError),
    /// A stop came before the look-up by marker for an unanswered create.
    UnansweredAtStop,
    /// The look-up by marker did not find an unanswered create (it may still land).
    StillUnanswered,
    /// Created, but checking its type or replaying its status labels failed.
    AfterCreate(GitlabIid, Error),
    /// Created, but closing it failed.
    CloseAfterCreate(GitlabIid, Error),
    /// Writing the link and marker into the recipe's issue failed.
    AdoptRecipe(GitlabIid, Error),
    /// An edit (or a relabel, or marking it gone) failed.
    Edit(GitlabIid, Error),
}

impl ActionFailure {
    fn error(&self) -> Option<&Error> {
        match self {
            ActionFailure::Create(e)
            | ActionFailure::AfterCreate(_, e)
            | ActionFailure::CloseAfterCreate(_, e)
            | ActionFailure::AdoptRecipe(_, e)
            | ActionFailure::Edit(_, e) => Some(e),
            ActionFailure::Unanswered(_)
            | ActionFailure::UnansweredAtStop
            | ActionFailure::StillUnanswered => None,
        }
    }

    /// A stop came before the request was sent: nothing failed, and nothing was done.
    pub fn is_stop(&self) -> bool {
        self.error().is_some_and(|e| e.cause() == Cause::Stopped)
    }
}

impl Failure {
    /// The Jira issue whose action failed; `None` when the pass itself failed.
    pub fn key(&self) -> Option<&JiraKey> {
        match self {
            Failure::Action(key, _) => Some(key),
            Failure::Pass(_) | Failure::Panicked(_) | Failure::History(_) => None,
        }
    }

    /// The error of a failure that says what only a person can fix. An unanswered create
    /// (decided by the next look-up) and a bug say nothing of the kind; nor does a history
    /// that could not be written: what the pass did stands, and the next pass writes again.
    fn telling_error(&self) -> Option<&Error> {
        match self {
            Failure::Pass(e) => Some(e),
            Failure::Action(_, why) => why.error(),
            Failure::Panicked(_) | Failure::History(_) => None,
        }
    }

    /// Only a person can fix it (a rejected token, a missing permission or project).
    pub fn needs_user(&self) -> bool {
        self.telling_error().is_some_and(Error::needs_user)
    }

    /// GitLab refused the token, a permission or the project: what is known of the project
    /// may no longer hold.
    pub fn gitlab_refused(&self) -> bool {
        self.telling_error().is_some_and(Error::is_gitlab_refusal)
    }

    fn write(&self, f: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            Failure::Pass(e) | Failure::History(e) => write!(f, "{}", e.report()),
            Failure::Panicked(why) => write!(f, "the pass panicked (a bug): {why}"),
            Failure::Action(key, why) => write_action(f, key, why),
        };
    }
}

fn write_action(f: &mut String, key: &JiraKey, why: &ActionFailure) -> fmt::Result {
    use std::fmt::Write;
    match why {
        ActionFailure::Create(e) => write!(f, "{key}: create failed: {}", e.report()),
        ActionFailure::Unanswered(e) => {
            write!(f, "{key}: {e}; the next look-up by marker decides")
        }
        ActionFailure::UnansweredAtStop => write!(
            f,
            "{key}: GitLab gave no reliable answer to its create; the next pass looks for it by marker before creating"
        ),
        ActionFailure::StillUnanswered => write!(
            f,
            "{key}: GitLab gave no reliable answer to its create and the issue is not there (yet); the next pass looks for it again before creating"
        ),
        ActionFailure::AfterCreate(iid, e) => {
            write!(f, "{key}: created as #{iid} but {}", e.report())
        }
        ActionFailure::CloseAfterCreate(iid, e) => write!(
            f,
            "{key}: created as #{iid} but closing failed: {}",
            e.report()
        ),
        ActionFailure::AdoptRecipe(iid, e) => write!(
            f,
            "{key} (#{iid}): adopting the recipe's issue failed: {}",
            e.report()
        ),
        ActionFailure::Edit(iid, e) => write!(f, "{key} (#{iid}): {}", e.report()),
    }
}

/// The line for terminals, logs and the pass history, made safe: it carries Jira keys,
/// servers' messages and names (see `safe_text`).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        self.write(&mut line);
        f.write_str(&crate::safe_text::safe(&line))
    }
}

/// Outcomes added up, with what was noticed on the way.
#[derive(Debug, Default)]
pub struct Tally {
    /// Jira issues read, and actions by how they ended (`failed`: `failures.len()`).
    pub counts: Counts,
    /// One per Jira issue whose action failed (in Jira key order once the pass is done), and
    /// the reason the pass itself failed.
    pub failures: Vec<Failure>,
    /// Things worth a warning that are not failures (an unknown status category, two issues
    /// with one marker).
    pub notes: Vec<String>,
    /// A dry run: the actions that would be taken.
    pub planned: Vec<String>,
    /// What the Automation recipe rule found (planned, in a dry run).
    pub recipe: RecipeTally,
    /// Creates without a reliable answer, until the look-up by marker decides.
    pub unanswered: Vec<Unanswered>,
}

impl AddAssign<Outcome> for Tally {
    fn add_assign(&mut self, outcome: Outcome) {
        let c = &mut self.counts;
        match outcome {
            Outcome::Created(_) => c.created += 1,
            Outcome::Adopted(_) => c.adopted += 1,
            Outcome::Closed(_) => c.closed += 1,
            Outcome::Reopened(_) => c.reopened += 1,
            Outcome::Edited(..) => c.updated += 1,
            Outcome::Unchanged => c.unchanged += 1,
            Outcome::Relinked(_) | Outcome::LeftAlone(_) => {}
            Outcome::Unanswered(u) => self.unanswered.push(u),
            Outcome::Planned(line) => self.planned.push(line),
            Outcome::Failed(f) => {
                c.failed += 1;
                self.failures.push(f);
            }
        }
    }
}

impl AddAssign<Tally> for Tally {
    fn add_assign(&mut self, later: Tally) {
        self.counts += &later.counts;
        self.failures.extend(later.failures);
        self.notes.extend(later.notes);
        self.planned.extend(later.planned);
        self.recipe += later.recipe;
        self.unanswered.extend(later.unanswered);
    }
}

impl Tally {
    /// What a plan found before anything is applied: the Jira issues that already agree,
    /// what the recipe rule decided, and what it noticed.
    pub fn of_plan(plan: &Plan) -> Tally {
        let mut tally = Tally {
            notes: plan.notes.clone(),
            recipe: plan.recipe,
            ..Tally::default()
        };
        tally.counts.unchanged = plan.unchanged;
        tally
    }

    /// Each failure's line (see [`Failure`]'s `Display`).
    pub fn failure_lines(&self) -> Vec<String> {
        self.failures.iter().map(ToString::to_string).collect()
    }

    /// Only a person can fix one of the failures.
    pub fn needs_user(&self) -> bool {
        self.failures.iter().any(Failure::needs_user)
    }

    /// GitLab refused the token, a permission or the project on some action.
    pub fn gitlab_refused(&self) -> bool {
        self.failures.iter().any(Failure::gitlab_refused)
    }

    /// The pass is over: creates still unanswered (no look-up could follow) fail, and the
    /// failures are put in order, one per Jira issue (the last word on each), by key, then
    /// those of the pass itself as they came.
    pub fn settle(&mut self) {
        for u in std::mem::take(&mut self.unanswered) {
            let why = ActionFailure::Unanswered(u.error);
            self.failures.push(Failure::Action(u.jira.key, why));
        }
        let mut by_key: BTreeMap<JiraKey, Failure> = BTreeMap::new();
        let mut of_pass = Vec::new();
        for f in std::mem::take(&mut self.failures) {
            match f.key().cloned() {
                Some(key) => {
                    by_key.insert(key, f);
                }
                None => of_pass.push(f),
            }
        }
        self.failures = by_key.into_values().chain(of_pass).collect();
        self.counts.failed = self.failures.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> JiraKey {
        k.parse().expect("key")
    }

    fn refused() -> Error {
        Error::RoleTooLow("GitLab answered 200 but did not change the label".into())
    }

    #[test]
    fn outcomes_add_up_one_way_at_every_level() {
        let mut job = Tally::default();
        job += Outcome::Created(GitlabIid(1));
        job += Outcome::Failed(Failure::Action(
            key("A-2"),
            ActionFailure::CloseAfterCreate(GitlabIid(1), refused()),
        ));
        let mut batch = Tally::default();
        batch += Outcome::Unchanged;
        batch += Outcome::Edited(GitlabIid(3), vec![Field::Title]);
        batch += Outcome::Relinked(GitlabIid(3));
        batch += Outcome::LeftAlone(GitlabIid(4));
        batch += job;
        let mut pass = Tally::default();
        pass += Outcome::Closed(GitlabIid(5));
        pass += batch;
        let c = &pass.counts;
        assert_eq!(
            (c.created, c.closed, c.updated, c.unchanged, c.failed),
            (1, 1, 1, 1, 1)
        );
        assert!(pass.needs_user(), "a role too low needs a person");
        assert!(pass.gitlab_refused());
        assert_eq!(
            pass.failures[0].to_string(),
            "A-2: created as #1 but closing failed: GitLab answered 200 but did not change the label"
        );
    }

    #[test]
    fn a_settled_tally_has_one_failure_per_issue_in_key_order_then_the_pass() {
        let mut t = Tally::default();
        let edit =
            |k: &str, n| Failure::Action(key(k), ActionFailure::Edit(GitlabIid(n), refused()));
        t += Outcome::Failed(edit("B-1", 1));
        t += Outcome::Failed(Failure::Pass(Error::Config("Jira kept failing".into())));
        t += Outcome::Failed(edit("A-1", 2));
        t += Outcome::Failed(Failure::Action(key("B-1"), ActionFailure::StillUnanswered));
        t.settle();
        let lines: Vec<String> = t.failures.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("A-1 (#2): "), "{lines:?}");
        assert!(
            lines[1].starts_with("B-1: GitLab gave no reliable answer"),
            "the last word"
        );
        assert_eq!(lines[2], "Jira kept failing");
        assert_eq!(t.counts.failed, 3);
    }

    #[test]
    fn unanswered_creates_are_no_failure_that_needs_a_person() {
        let f = Failure::Action(key("A-1"), ActionFailure::StillUnanswered);
        assert!(!f.needs_user() && !f.gitlab_refused());
        assert!(!Failure::Panicked("x".into()).needs_user());
        let control = Failure::Action(
            key("A-1"),
            ActionFailure::Edit(GitlabIid(1), Error::NotApplied("a\u{1b}[31mred".into())),
        );
        assert!(
            !control.to_string().contains('\u{1b}'),
            "made safe: {control}"
        );
    }
}
