//! The per-issue timestamps GitLab's Value Stream Analytics reads (`Issue::Metrics`), and
//! commits pushed to a project.
//!
//! - On **every save** of an issue (API create or edit, UI edit, a commit closing it), GitLab
//!   sets, once each and on **its own clock** (the sim clock, never an Owner's `updated_at`):
//!   `first_associated_with_milestone_at` if the issue has a milestone (closed ones count), and
//!   `first_added_to_board_at` if one of its labels has a list on any board. A list made after
//!   the label was given stamps nothing until the issue's next save.
//! - A pushed commit whose message mentions an issue (`#57` in the pushed project,
//!   `group/project#57` or `project#57` for a sibling, or the issue's web URL) sets
//!   `first_mentioned_in_commit_at` to the commit's `committed_date` if that is earlier (it
//!   only moves earlier), and adds a "mentioned in commit" note (which touches `updated_at`,
//!   UNVERIFIED). Only the newest 100 commits of a push count. Any branch counts; only on the
//!   default branch (`main`) does "Closes #57" (or fixes/resolves/implements) close the issue.
//! - Tests read the stamps with [`FakeGitlab::vsa_stamps`]; there is no REST route for them.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{lock, FakeGitlab, State, ROOT_USER_ID};

/// GitLab keeps only this many commits of one push for references and metrics.
const PROCESS_COMMIT_LIMIT: usize = 100;
const DEFAULT_BRANCH: &str = "main";

/// An issue's `Issue::Metrics` row, plus the commits that mentioned it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VsaStamps {
    pub first_added_to_board_at: Option<DateTime<Utc>>,
    pub first_associated_with_milestone_at: Option<DateTime<Utc>>,
    pub first_mentioned_in_commit_at: Option<DateTime<Utc>>,
    /// Shas of the commits that mentioned the issue, in the order they were processed.
    pub mentioned_in: Vec<String>,
}

impl VsaStamps {
    /// The end of GitLab's Issue stage: the milestone stamp when there is one, else the board
    /// stamp (`COALESCE`, not "whichever came first").
    pub fn issue_stage_end(&self) -> Option<DateTime<Utc>> {
        self.first_associated_with_milestone_at
            .or(self.first_added_to_board_at)
    }
}

/// One commit of a push.
#[derive(Clone, Debug, PartialEq)]
pub struct SimCommit {
    pub message: String,
    /// The committer date of the git object (the developer's clock; a rebase changes it).
    pub committed_date: DateTime<Utc>,
}

impl SimCommit {
    pub fn new(message: &str, committed_date: DateTime<Utc>) -> SimCommit {
        SimCommit {
            message: message.to_owned(),
            committed_date,
        }
    }
}

impl State {
    /// `Issue::Metrics#record!`: run on every save of the issue.
    pub(super) fn restamp(&mut self, project: usize, iid: u64) {
        let now = self.now();
        let listed = self.labels_with_lists();
        let Some(issue) = self.projects[project].issues.get(&iid) else {
            return;
        };
        let on_board = issue.labels.iter().any(|name| {
            self.label_named(project, name)
                .is_some_and(|l| listed.contains(&l.id))
        });
        let has_milestone = issue.plan.milestone.is_some();
        let Some(issue) = self.projects[project].issues.get_mut(&iid) else {
            return;
        };
        let stamps = &mut issue.plan.stamps;
        if on_board && stamps.first_added_to_board_at.is_none() {
            stamps.first_added_to_board_at = Some(now);
        }
        if has_milestone && stamps.first_associated_with_milestone_at.is_none() {
            stamps.first_associated_with_milestone_at = Some(now);
        }
    }

    /// Apply one commit's mentions (and, on the default branch, its closing references).
    fn process_commit(&mut self, project: usize, branch: &str, sha: &str, commit: &SimCommit) {
        let here = self.projects[project].path.clone();
        let base = self.base_url.clone();
        for r in references(&commit.message, &here, &base) {
            let Some(pi) = self.project_index(&r.project) else {
                continue;
            };
            let now = self.now();
            let Some(issue) = self.projects[pi].issues.get_mut(&r.iid) else {
                continue;
            };
            let stamps = &mut issue.plan.stamps;
            if !stamps.mentioned_in.iter().any(|s| s == sha) {
                stamps.mentioned_in.push(sha.to_owned());
                issue.updated_at = now;
            }
            let first = &mut stamps.first_mentioned_in_commit_at;
            if first.is_none_or(|t| t >= commit.committed_date) {
                *first = Some(commit.committed_date);
            }
            if r.closing && branch == DEFAULT_BRANCH && issue.state == super::IssueState::Opened {
                issue.close(now, ROOT_USER_ID);
                self.restamp(pi, r.iid);
            }
        }
    }
}

/// One issue reference found in a commit message.
#[derive(Debug, PartialEq)]
struct Reference {
    project: String,
    iid: u64,
    /// Preceded by a closing keyword ("Closes", "fixes:", "Resolved issue", ...).
    closing: bool,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-/".contains(c)
}

/// The references of a message: `#N`, `path#N`, and `<base>/<path>/-/issues/N`.
fn references(message: &str, here: &str, base: &str) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::new();
    let namespace = here.rsplit_once('/').map_or("", |(ns, _)| ns);
    for (at, _) in message.match_indices('#') {
        let Some(iid) = leading_number(&message[at + 1..]) else {
            continue;
        };
        let start = message[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_path_char(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let prefix = &message[start..at];
        let project = match prefix {
            "" => here.to_owned(),
            p if p.starts_with('/') || p.ends_with('/') => continue,
            p if p.contains('/') => p.to_owned(),
            p => format!("{namespace}/{p}"),
        };
        push_ref(&mut out, project, iid, &message[..start]);
    }
    let url_prefix = format!("{base}/");
    for (at, _) in message.match_indices(&url_prefix) {
        let rest = &message[at + url_prefix.len()..];
        let Some((path, tail)) = rest.split_once("/-/issues/") else {
            continue;
        };
        if let Some(iid) = leading_number(tail).filter(|_| path.chars().all(is_path_char)) {
            push_ref(&mut out, path.to_owned(), iid, &message[..at]);
        }
    }
    out
}

fn push_ref(out: &mut Vec<Reference>, project: String, iid: u64, before: &str) {
    let closing = closes(before);
    match out
        .iter_mut()
        .find(|r| r.project.eq_ignore_ascii_case(&project) && r.iid == iid)
    {
        Some(r) => r.closing |= closing,
        None => out.push(Reference {
            project,
            iid,
            closing,
        }),
    }
}

/// Digits at the start of `s`, not followed by a word character.
fn leading_number(s: &str) -> Option<u64> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let next = s[digits.len()..].chars().next();
    if digits.is_empty() || next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    digits.parse().ok()
}

/// GitLab's default closing pattern, simplified: the text right before a reference ends with
/// a closing verb, an optional `:`, and an optional "issue"/"issues".
fn closes(before: &str) -> bool {
    const VERBS: [&str; 15] = [
        "close",
        "closes",
        "closed",
        "closing",
        "fix",
        "fixes",
        "fixed",
        "fixing",
        "resolve",
        "resolves",
        "resolved",
        "resolving",
        "implement",
        "implements",
        "implemented",
    ];
    let mut words = before.split_whitespace().rev();
    let mut last = words.next().unwrap_or("");
    if last.eq_ignore_ascii_case("issue") || last.eq_ignore_ascii_case("issues") {
        last = words.next().unwrap_or("");
    }
    let verb = last.strip_suffix(':').unwrap_or(last);
    VERBS.iter().any(|v| v.eq_ignore_ascii_case(verb))
}

fn commit_sha(project: &str, branch: &str, n: u64, message: &str) -> String {
    let digest = Sha256::digest(format!("{project}\0{branch}\0{n}\0{message}").as_bytes());
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

impl FakeGitlab {
    /// The VSA stamps GitLab keeps for an issue (sim-only: no REST route shows them).
    pub fn vsa_stamps(&self, project: &str, iid: u64) -> Option<VsaStamps> {
        let st = lock(&self.state);
        let pi = st.project_index_or_panic(project);
        let issue = st.projects[pi].issues.get(&iid)?;
        Some(issue.plan.stamps.clone())
    }

    /// `git push` of `commits` (oldest first) to `branch`; returns their shas. Only the newest
    /// 100 are processed for references, as GitLab does.
    pub fn push(&self, project: &str, branch: &str, commits: &[SimCommit]) -> Vec<String> {
        let mut st = lock(&self.state);
        let pi = st.project_index_or_panic(project);
        let path = st.projects[pi].path.clone();
        let shas: Vec<String> = commits
            .iter()
            .map(|c| {
                st.planning.commits += 1;
                commit_sha(&path, branch, st.planning.commits, &c.message)
            })
            .collect();
        let skip = commits.len().saturating_sub(PROCESS_COMMIT_LIMIT);
        for (commit, sha) in commits.iter().zip(&shas).skip(skip) {
            st.process_commit(pi, branch, sha, commit);
        }
        shas
    }

    /// Push one commit; returns its sha.
    pub fn push_commit(
        &self,
        project: &str,
        branch: &str,
        message: &str,
        committed_date: DateTime<Utc>,
    ) -> String {
        let commit = SimCommit::new(message, committed_date);
        self.push(project, branch, &[commit])
            .pop()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
