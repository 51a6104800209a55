//! What Jira said about each issue of a pass, recorded for `report`: created and done times,
//! status, type. A fact changes only with a new Jira version (`updated`), so only the versions
//! are compared, and only new versions are read in full and written: an idle pass writes
//! nothing.

use std::collections::HashMap;

use super::observe::Observation;
use super::{Reconciler, Target};
use crate::domain::{JiraIssue, StatusCategory};
use crate::error::Result;
use crate::store::{JiraFact, Store};

impl Reconciler {
    pub(super) fn record_facts(
        &self,
        store: &Store,
        target: &Target<'_>,
        seen: &Observation,
    ) -> Result<()> {
        let versions = store.fact_versions(&target.name)?;
        let gone = store.gone(&target.name)?;
        let mut newest: HashMap<&str, &JiraIssue> = HashMap::new();
        for j in &seen.jira {
            let e = newest.entry(j.id.as_str()).or_insert(j);
            if j.updated > e.updated {
                *e = j;
            }
        }
        let new_versions: Vec<&str> = newest
            .values()
            .filter(|j| versions.get(&j.id) != Some(&j.updated.timestamp_millis()))
            .map(|j| j.id.as_str())
            .collect();
        let known = store.facts_for(&target.name, &new_versions)?;
        let changed: Vec<JiraFact> = new_versions
            .iter()
            .filter_map(|id| newest.get(id))
            .map(|j| fact_for(j, known.get(&j.id)))
            .collect();
        // Issues that had left the mapping and are back.
        let back: Vec<&str> = newest
            .keys()
            .copied()
            .filter(|id| gone.contains_key(*id))
            .collect();
        store.save_facts(&target.name, &changed, &back)
    }
}

/// The fact for an issue, given the one recorded before. A workflow that reaches Done without
/// a resolution date is done since it was first seen done, not since its last comment.
pub(super) fn fact_for(j: &JiraIssue, before: Option<&JiraFact>) -> JiraFact {
    let done = j.category == StatusCategory::Done;
    let done_at = done.then(|| {
        j.resolved
            .or(before.filter(|b| b.done).and_then(|b| b.done_at))
            .unwrap_or(j.updated)
    });
    JiraFact {
        jira_id: j.id.clone(),
        jira_key: j.key.clone(),
        issue_type: j.issue_type.clone(),
        status: j.status.clone(),
        done,
        created: j.created,
        done_at,
        updated: j.updated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn done_time_is_the_resolution_else_when_first_seen_done() {
        let t = |s: i64| {
            Utc.timestamp_opt(1_700_000_000 + s, 0)
                .single()
                .expect("time")
        };
        let mut j = JiraIssue {
            id: "1".into(),
            key: "A-1".into(),
            summary: None,
            category: StatusCategory::Done,
            status: Some("Done".into()),
            issue_type: None,
            project: "A".into(),
            created: t(0),
            updated: t(100),
            resolved: None,
        };
        let first = fact_for(&j, None);
        assert_eq!(first.done_at, Some(t(100)));
        j.updated = t(500); // a comment later
        assert_eq!(fact_for(&j, Some(&first)).done_at, Some(t(100)));
        j.resolved = Some(t(90));
        assert_eq!(fact_for(&j, Some(&first)).done_at, Some(t(90)));
        j.category = StatusCategory::InProgress;
        assert_eq!(fact_for(&j, Some(&first)).done_at, None);
    }
}
