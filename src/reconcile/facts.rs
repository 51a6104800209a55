//! What Jira said about each issue of a page, recorded for `report`: created and done times,
//! status, type. A fact changes only with a new Jira version (`updated`), so the page's stored
//! facts are read in one query and only newer versions are written, with the page's other
//! outcomes: an idle pass writes nothing. Issues remembered as gone that the search returns
//! again are forgotten as gone.

use std::collections::HashMap;

use super::{Reconciler, Target};
use crate::domain::{JiraId, JiraIssue, StatusCategory};
use crate::error::Result;
use crate::store::{JiraFact, KnownFact, PageWrite, Store};

impl Reconciler {
    /// The facts and returns to record for one page (written by `apply` with its outcomes).
    /// `any_gone`: whether the mapping has issues remembered as gone that may come back.
    pub(super) fn page_facts(
        &self,
        store: &Store,
        target: &Target<'_>,
        issues: &[JiraIssue],
        any_gone: bool,
    ) -> Result<PageWrite> {
        let mut newest: HashMap<JiraId, &JiraIssue> = HashMap::with_capacity(issues.len());
        for j in issues {
            let e = newest.entry(j.id).or_insert(j);
            if j.updated > e.updated {
                *e = j;
            }
        }
        let ids: Vec<JiraId> = newest.keys().copied().collect();
        let known = store.facts().known(&target.name, &ids)?;
        // Never step back: search may serve an older version than one already recorded.
        let facts = newest
            .values()
            .filter(|j| known.get(&j.id).is_none_or(|f| j.updated > f.updated))
            .map(|j| fact_for(j, known.get(&j.id)))
            .collect();
        let back = if any_gone {
            store
                .facts()
                .gone_among(&target.name, &ids)?
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        Ok(PageWrite {
            facts,
            back,
            ..PageWrite::default()
        })
    }
}

/// The fact for an issue, given the one recorded before. A workflow that reaches Done without
/// a resolution date is done since it was first seen done, not since its last comment.
pub(super) fn fact_for(j: &JiraIssue, before: Option<&KnownFact>) -> JiraFact {
    let done = j.category == StatusCategory::Done;
    let done_at = done.then(|| {
        j.resolved
            .or(before.and_then(|b| b.done_at))
            .unwrap_or(j.updated)
    });
    JiraFact {
        jira_id: j.id,
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
            id: JiraId::new(1),
            key: "A-1".parse().expect("key"),
            summary: None,
            category: StatusCategory::Done,
            status: Some("Done".into()),
            issue_type: None,
            project: "A".into(),
            created: t(0),
            updated: t(100),
            resolved: None,
            planning: Default::default(),
        };
        let first = fact_for(&j, None);
        assert_eq!(first.done_at, Some(t(100)));
        j.updated = t(500); // a comment later
        assert_eq!(fact_for(&j, Some(&first.known())).done_at, Some(t(100)));
        j.resolved = Some(t(90));
        assert_eq!(fact_for(&j, Some(&first.known())).done_at, Some(t(90)));
        j.category = StatusCategory::InProgress;
        let reopened = fact_for(&j, Some(&first.known()));
        assert_eq!(reopened.done_at, None);
        // Done again later without a resolution: done since then, not since the first time.
        j.category = StatusCategory::Done;
        j.resolved = None;
        j.updated = t(900);
        assert_eq!(fact_for(&j, Some(&reopened.known())).done_at, Some(t(900)));
    }
}
