//! The demo's last scene: a developer commits on a branch named after a Jira key, the commit
//! hook adds the mirror's reference (found as `ref` finds it), and the push makes GitLab stamp
//! the mirror's first mention in a commit, the end of its Plan stage.

use chrono::Duration;
use jgr_sim::gitlab::SimCommit;
use jgr_sim::world::SimWorld;

use crate::config::{ConfigFile, ConfigSource};
use crate::error::{Error, Result};

/// The project the developers push their code to (not the one the mirrors are in).
const CODE: &str = "acme/app";

pub(super) async fn show(w: &SimWorld, project: &str) -> Result<()> {
    let open = w
        .jira
        .issues()
        .into_iter()
        .filter(|i| i.category != "done" && i.issue_type != "Epic")
        .max_by_key(|i| i.created);
    let Some(issue) = open else {
        return Ok(());
    };
    let path = w
        .write_config()
        .map_err(|e| Error::io("demo: cannot write its config", e))?;
    let side = ConfigFile {
        path,
        source: ConfigSource::Flag,
    }
    .load_gitlab_side()?;
    let found = match crate::reference::find(&side, &issue.key.to_lowercase()).await? {
        Ok(found) => found,
        Err(why) => {
            println!("\n6. No commit reference for {}: {why}", issue.key);
            return Ok(());
        }
    };
    let branch = format!("{}-search-fix", issue.key.to_lowercase());
    let message = format!("Fix the search\n\nRefs: {}", found.reference);
    println!(
        "\n6. A developer commits on the branch {branch}; the prepare-commit-msg hook asks \
         `jira-gitlab-reconciler ref {}` and the message becomes:\n",
        issue.key.to_lowercase()
    );
    for line in message.lines() {
        println!("   {line}");
    }
    w.gitlab.add_project(CODE);
    let committed = w.clock.now() - Duration::hours(3);
    w.gitlab
        .push(CODE, &branch, &[SimCommit::new(&message, committed)]);
    let iid = found
        .reference
        .rsplit('#')
        .next()
        .and_then(|n| n.parse().ok());
    let stamp = iid
        .and_then(|iid| w.gitlab.vsa_stamps(project, iid))
        .and_then(|s| s.first_mentioned_in_commit_at);
    if let Some(at) = stamp {
        println!(
            "\n   Pushed to {CODE}: GitLab stamps {}'s first mention in a commit at {} (the \
             commit's time), where GitLab's Plan stage ends; the mirror stays open.",
            found.reference,
            at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(())
}
