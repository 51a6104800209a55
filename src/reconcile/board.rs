//! Keeping the status board (`status_board`, planned by `plan/board.rs`): a GitLab issue board
//! with a label list per Jira status of the "In Progress" category, in the workflow's order.
//! GitLab's Issue stage ends when an issue first gets a label that has a list on a board (and
//! the list must be there first), so the board is made sure of at the start of a pass, before
//! anything is applied.
//!
//! What a pass learned is kept in the state database (`KeptBoard`): an incremental pass that
//! finds it asks nothing (an idle pass stays one request). A full pass reads the workflow and
//! the board again (repairing a list removed by hand), and so does a pass that is about to add
//! a status label the workflow did not have when the board was last read. Problems are notes:
//! the mirrors still get their status labels.

use super::outcome::{Outcome, Tally};
use super::{Mode, Reconciler, Target};
use crate::config::Mapping;
use crate::domain::{status_label, PassKind, StatusCategory};
use crate::gitlab::{LabelRef, PLANNER};
use crate::plan::{status_board, Action, BoardChoice, BoardPlan, SeenBoard};
use crate::store::KeptBoard;

/// The colour of a status label of the "In Progress" category (as `fields.rs` gives it).
const IN_PROGRESS_COLOR: &str = "#0052CC";

/// What this pass knows of the mapping's status board.
#[derive(Default)]
pub(super) struct BoardState {
    kept: Option<KeptBoard>,
    /// This pass read the workflow and the board already.
    looked: bool,
}

/// What a look at Jira's workflow and GitLab's boards found.
struct Seen {
    plan: BoardPlan,
    /// Every status label of the workflow.
    statuses: Vec<String>,
    labels: Vec<LabelRef>,
}

impl Reconciler {
    /// At the start of a pass: the status board, made sure of unless an incremental pass finds
    /// it kept already. A dry run lists what it would write.
    pub(super) async fn keep_status_board(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        kind: PassKind,
    ) -> Tally {
        let Some(name) = target.mapping.status_board.as_deref() else {
            return Tally::default();
        };
        let kept = match mode.store() {
            Some(store) => {
                let url = self.cfg.gitlab.identity();
                match store.cache().status_board(&target.name, &url, name) {
                    Ok(kept) => kept,
                    Err(e) => return note(format!("status board \"{name}\": {}", e.report())),
                }
            }
            None => None,
        };
        let trusted = kept.is_some() && kind != PassKind::Full;
        crate::lock_unpoisoned(&target.board).kept = kept;
        if trusted {
            return Tally::default();
        }
        self.look_at_board(mode, target, name).await
    }

    /// Before a batch is applied: a status label about to be added whose status the workflow
    /// did not have when the board was last read (a new status in Jira) makes this pass read
    /// the workflow and the board again, once.
    pub(super) async fn board_before_labels(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        actions: &[Action],
    ) -> Tally {
        let (Some(name), Some(scope)) = (
            target.mapping.status_board.as_deref(),
            target.rules.status_labels.as_deref(),
        ) else {
            return Tally::default();
        };
        let unknown = {
            let state = crate::lock_unpoisoned(&target.board);
            let known = state
                .kept
                .as_ref()
                .map_or(&[][..], |k| k.statuses.as_slice());
            let added = super::fields::status_labels_added(scope, actions);
            !state.looked && added.keys().any(|l| !known.contains(l))
        };
        if !unknown {
            return Tally::default();
        }
        self.look_at_board(mode, target, name).await
    }

    /// Read the workflow and the board, then write what is missing (a dry run: say it).
    async fn look_at_board(&self, mode: Mode<'_>, target: &Target<'_>, name: &str) -> Tally {
        let remembered = {
            let mut state = crate::lock_unpoisoned(&target.board);
            state.looked = true;
            state.kept.as_ref().map(|k| k.board_id)
        };
        let seen = self.see_board(target.mapping, target.project.id, name, remembered);
        let seen = match seen.await {
            Ok(seen) => seen,
            Err(why) => return note(format!("status board \"{name}\" not checked: {why}")),
        };
        let names = seen.labels.iter().map(|l| l.name.clone());
        self.remember_labels(target.project.id, names);
        let mut tally = Tally::default();
        if !seen.plan.others.is_empty() && remembered.is_none() {
            if let BoardChoice::Reuse(id) = seen.plan.board {
                tally.notes.push(format!(
                    "status board \"{name}\" (board {id}) already has lists that are not ours ({}): \
                     they stay, and ours are added beside them",
                    seen.plan.others.join(", ")
                ));
            }
        }
        let Mode::Apply(store) = mode else {
            for line in seen.plan.describe(name) {
                tally += Outcome::Planned(line);
            }
            return tally;
        };
        if !seen.plan.is_done() && target.project.access_level < PLANNER {
            tally.notes.push(format!(
                "status board \"{name}\" needs {}, and the token's role on {} (access level {}) \
                 may not manage boards and labels: give it the Planner role or higher",
                seen.plan.describe(name).join("; "),
                target.project.path,
                target.project.access_level
            ));
            return tally;
        }
        match self.write_board(target, name, &seen).await {
            Ok(kept) => {
                let url = self.cfg.gitlab.identity();
                let saved = store
                    .cache()
                    .save_status_board(&target.name, &url, name, &kept);
                if let Err(e) = saved {
                    tally
                        .notes
                        .push(format!("status board \"{name}\": {}", e.report()));
                }
                crate::lock_unpoisoned(&target.board).kept = Some(kept);
            }
            Err(why) => tally.notes.push(format!(
                "status board \"{name}\" is not complete: {why}; mirrors still get their status \
                 labels, and the next pass tries again"
            )),
        }
        tally
    }

    /// What keeping `mapping`'s status board in the GitLab project `project_id` would write
    /// (for `check`: reads only); `None` without `status_board`.
    pub async fn plan_status_board(
        &self,
        mapping: &Mapping,
        project_id: u64,
    ) -> Result<Option<BoardPlan>, String> {
        let Some(name) = mapping.status_board.as_deref() else {
            return Ok(None);
        };
        let seen = self.see_board(mapping, project_id, name, None).await?;
        Ok(Some(seen.plan))
    }

    /// Jira's workflow, the project's boards and labels, and the plan they make.
    async fn see_board(
        &self,
        mapping: &Mapping,
        project_id: u64,
        name: &str,
        remembered: Option<u64>,
    ) -> Result<Seen, String> {
        let scope = mapping.status_labels.as_deref().unwrap_or_default();
        let workflow = self.jira.workflow(&mapping.jira_project).await;
        let workflow = workflow.map_err(|e| e.to_string())?;
        let label = |s: &crate::jira::WorkflowStatus| status_label(scope, &s.name);
        let wanted: Vec<String> = workflow
            .statuses
            .iter()
            .filter(|s| s.category == StatusCategory::InProgress)
            .map(label)
            .collect();
        let statuses = workflow.statuses.iter().map(label).collect();
        let gitlab = |e: crate::http::ApiError| e.to_string();
        let boards = self
            .gitlab
            .project_boards(project_id)
            .await
            .map_err(gitlab)?;
        let labels = self.gitlab.label_refs(project_id).await.map_err(gitlab)?;
        let seen: Vec<SeenBoard> = boards
            .iter()
            .map(|b| SeenBoard {
                id: b.id,
                name: b.name.clone(),
                lists: b.list_labels(),
            })
            .collect();
        let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
        Ok(Seen {
            plan: status_board(name, &wanted, &seen, &names, remembered),
            statuses,
            labels,
        })
    }

    /// Make the board, the labels and the lists the plan says are missing, in that order.
    async fn write_board(
        &self,
        target: &Target<'_>,
        name: &str,
        seen: &Seen,
    ) -> Result<KeptBoard, String> {
        let project = &target.project;
        let plan = &seen.plan;
        let board_id = match plan.board {
            BoardChoice::Reuse(id) => id,
            BoardChoice::Create => {
                let board = self.gitlab.create_board(project.id, name).await;
                let id = board.map_err(|e| e.to_string())?.id;
                tracing::info!(board = id, name = %name, project = %project.path, "created the status board");
                id
            }
        };
        let scope = target.rules.status_labels.as_deref().unwrap_or_default();
        for label in &plan.create_labels {
            self.create_status_label(project, scope, label, IN_PROGRESS_COLOR)
                .await?;
        }
        let labels = if plan.create_labels.is_empty() {
            seen.labels.clone()
        } else {
            let listed = self.gitlab.label_refs(project.id).await;
            listed.map_err(|e| e.to_string())?
        };
        for label in &plan.add_lists {
            let Some(id) = labels.iter().find(|l| l.name == *label).map(|l| l.id) else {
                return Err(format!(
                    "the label {label} is not visible in {}",
                    project.path
                ));
            };
            let added = self
                .gitlab
                .create_board_list(project.id, board_id, id)
                .await;
            added.map_err(|e| format!("could not add the list {label}: {e}"))?;
            tracing::info!(board = board_id, label = %label, "added a list to the status board");
        }
        Ok(KeptBoard {
            board_id,
            lists: plan.wanted.clone(),
            statuses: seen.statuses.clone(),
        })
    }
}

fn note(text: String) -> Tally {
    Tally {
        notes: vec![text],
        ..Tally::default()
    }
}
