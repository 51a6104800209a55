//! The stages `vsa setup` wants in a value stream, and what it must send to get them: pure,
//! no I/O.
//!
//! - One custom stage per Jira status before Done, in workflow order: from "its status label
//!   was added" to "that label was removed" (GitLab adds up the intervals when a status is
//!   entered again, since 16.10), and "Lead time" from "issue created" to "issue closed".
//! - A new stream also gets GitLab's six built-in stages first (`issue`, `plan`, `code`,
//!   `test`, `review`, `staging`): the first saved stream replaces GitLab's in-memory default
//!   one in the value stream list, and these keep what it showed (the Issue and Plan stages
//!   the milestone, board and commit stamps feed) in view. They take what room is left: a
//!   stream holds at most 15 stages, and the statuses come first.
//! - An existing stream (found by name) is only added to: every stage it has is sent back by
//!   id (GitLab destroys a stage an update does not send), so stages someone else added, or
//!   a status's stage whose status left the workflow, stay. Nothing to add: nothing is sent.
//! - Stage names are the status names; one that equals a built-in stage's name (in any case),
//!   "Lead time", or a stage already in the stream gets the prefix "Jira: ".

use crate::gitlab::{StreamStage, ValueStream};

/// GitLab refuses a value stream with more stages.
pub const MAX_STAGES: usize = 15;
/// GitLab's built-in stages, in their order; a custom stage may not be named exactly so.
pub const DEFAULT_STAGES: [&str; 6] = ["issue", "plan", "code", "test", "review", "staging"];
pub const LEAD_TIME: &str = "Lead time";
const PREFIX: &str = "Jira: ";

pub const LABEL_ADDED: &str = "ISSUE_LABEL_ADDED";
pub const LABEL_REMOVED: &str = "ISSUE_LABEL_REMOVED";
pub const ISSUE_CREATED: &str = "ISSUE_CREATED";
pub const ISSUE_CLOSED: &str = "ISSUE_CLOSED";

/// A Jira status that gets a stage: its name and its status label's title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusStage {
    pub status: String,
    pub label: String,
}

/// One stage of the stream `vsa setup` sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A stage the stream has, sent back by id as it is.
    Keep { id: String, name: String },
    /// A built-in stage, by name.
    Default { name: &'static str },
    /// A new stage for a status: its label added → removed.
    Status { name: String, label: String },
    /// A new "Lead time" stage: issue created → closed.
    LeadTime { name: String },
}

impl Planned {
    pub fn name(&self) -> &str {
        match self {
            Planned::Keep { name, .. }
            | Planned::Status { name, .. }
            | Planned::LeadTime { name } => name,
            Planned::Default { name } => name,
        }
    }

    pub fn is_new(&self) -> bool {
        !matches!(self, Planned::Keep { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create {
        stages: Vec<Planned>,
        /// Built-in stages there was no room for.
        left_out: Vec<&'static str>,
    },
    Update {
        id: String,
        stages: Vec<Planned>,
    },
    /// The stream has a stage for every status and the lead time.
    UpToDate,
}

/// What to send for `statuses` (in workflow order), given the stream of that name if it exists.
/// `Err` says why it cannot fit.
pub fn plan(existing: Option<&ValueStream>, statuses: &[StatusStage]) -> Result<Plan, String> {
    match existing {
        None => plan_create(statuses),
        Some(stream) => plan_update(stream, statuses),
    }
}

fn plan_create(statuses: &[StatusStage]) -> Result<Plan, String> {
    let required = statuses.len() + 1;
    if required > MAX_STAGES {
        return Err(too_many(statuses.len()));
    }
    let room = MAX_STAGES - required;
    let mut stages: Vec<Planned> = DEFAULT_STAGES
        .iter()
        .take(room)
        .map(|name| Planned::Default { name })
        .collect();
    let left_out = DEFAULT_STAGES.iter().skip(room).copied().collect();
    let mut taken: Vec<String> = Vec::new();
    for s in statuses {
        let name = status_name(&s.status, &taken);
        taken.push(name.clone());
        stages.push(Planned::Status {
            name,
            label: s.label.clone(),
        });
    }
    stages.push(Planned::LeadTime {
        name: lead_time_name(&taken),
    });
    Ok(Plan::Create { stages, left_out })
}

fn plan_update(stream: &ValueStream, statuses: &[StatusStage]) -> Result<Plan, String> {
    let keep = |s: &StreamStage| Planned::Keep {
        id: s.id.clone(),
        name: s.name.clone(),
    };
    let mut taken: Vec<String> = stream.stages.iter().map(|s| s.name.clone()).collect();
    let mut used: Vec<&str> = Vec::new();
    let mut stages: Vec<Planned> = stream
        .stages
        .iter()
        .filter(|s| !s.custom)
        .map(keep)
        .collect();
    for status in statuses {
        match stream
            .stages
            .iter()
            .find(|s| is_status_stage(s, &status.label))
        {
            Some(s) => {
                used.push(&s.id);
                stages.push(keep(s));
            }
            None => {
                let name = status_name(&status.status, &taken);
                taken.push(name.clone());
                let label = status.label.clone();
                stages.push(Planned::Status { name, label });
            }
        }
    }
    match stream.stages.iter().find(|s| is_lead_time(s)) {
        Some(s) => {
            used.push(&s.id);
            stages.push(keep(s));
        }
        None => stages.push(Planned::LeadTime {
            name: lead_time_name(&taken),
        }),
    }
    let others = stream
        .stages
        .iter()
        .filter(|s| s.custom && !used.contains(&s.id.as_str()));
    stages.extend(others.map(keep));
    if !stages.iter().any(Planned::is_new) {
        return Ok(Plan::UpToDate);
    }
    if stages.len() > MAX_STAGES {
        return Err(no_room(stream, &stages));
    }
    Ok(Plan::Update {
        id: stream.id.clone(),
        stages,
    })
}

/// A stage measuring the time with `label`: added → removed.
fn is_status_stage(s: &StreamStage, label: &str) -> bool {
    s.custom
        && s.start_event == LABEL_ADDED
        && s.end_event == LABEL_REMOVED
        && s.start_label.as_deref() == Some(label)
        && s.end_label.as_deref() == Some(label)
}

fn is_lead_time(s: &StreamStage) -> bool {
    s.custom && s.start_event == ISSUE_CREATED && s.end_event == ISSUE_CLOSED
}

/// A status's stage name: the status, or "Jira: status" when GitLab reserves the name (a
/// built-in stage's, in any case), it reads as "Lead time", or the stream has it already.
fn status_name(status: &str, taken: &[String]) -> String {
    let lower = status.to_lowercase();
    let reserved = DEFAULT_STAGES.contains(&lower.as_str()) || lower == LEAD_TIME.to_lowercase();
    prefixed_if(reserved || clashes(status, taken), status)
}

fn lead_time_name(taken: &[String]) -> String {
    prefixed_if(clashes(LEAD_TIME, taken), LEAD_TIME)
}

fn clashes(name: &str, taken: &[String]) -> bool {
    taken.iter().any(|t| t.eq_ignore_ascii_case(name))
}

fn prefixed_if(prefix: bool, name: &str) -> String {
    if prefix {
        format!("{PREFIX}{name}")
    } else {
        name.to_string()
    }
}

fn too_many(statuses: usize) -> String {
    format!(
        "the Jira workflow has {statuses} statuses before Done, more than a GitLab value stream \
         holds ({MAX_STAGES} stages: {} statuses and Lead time); make stages for the statuses \
         that matter most by hand (Analyze → Value stream analytics → New value stream; start: \
         its status label was added, end: that label was removed)",
        MAX_STAGES - 1
    )
}

fn no_room(stream: &ValueStream, stages: &[Planned]) -> String {
    let new: Vec<&str> = stages
        .iter()
        .filter(|s| s.is_new())
        .map(Planned::name)
        .collect();
    format!(
        "value stream {:?} has {} stages; adding {} ({}) would make {}, and GitLab allows {MAX_STAGES}: \
         remove stages you no longer need from it (Analyze → Value stream analytics → Edit), or \
         give `vsa setup --name` another stream's name",
        stream.name,
        stream.stages.len(),
        new.len(),
        new.join(", "),
        stages.len()
    )
}

#[cfg(test)]
mod tests;
