//! Creates that got no reliable answer (a timeout after sending, a cut connection) may have
//! landed. They are looked up by their marker before anything is created again: the project is
//! listed once more and only those issues are planned and applied, with no create sent twice.

use std::collections::{HashMap, HashSet};

use super::observe::PageView;
use super::outcome::{Tally, Unanswered};
use super::{Reconciler, Target};
use crate::domain::{JiraId, JiraIssue};
use crate::error::Result;
use crate::store::{PageWrite, Store};

impl Reconciler {
    /// What the second look decided for `lost`. Not looked up when a stop came: they stay
    /// unanswered (and the pass fails them, keeping their intents for the next pass).
    pub(super) async fn recover_lost_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        lost: Vec<Unanswered>,
    ) -> Result<Tally> {
        if lost.is_empty() || self.stopping() {
            return Ok(Tally {
                unanswered: lost,
                ..Tally::default()
            });
        }
        tracing::warn!(
            count = lost.len(),
            "creates without a reliable answer; looking them up by marker"
        );
        let lost: Vec<JiraIssue> = lost.into_iter().map(|u| *u.jira).collect();
        let mut view = self.scan_project(store, target).await?;
        let ids: Vec<JiraId> = lost.iter().map(|j| j.id).collect();
        let mirrors = store.mirrors().of(&target.name, &target.siblings, &ids)?;
        view.load_page(&target.rules, &lost, &mirrors)?;
        let page = PageView {
            jira: &lost,
            mirrors,
            claimed: HashSet::new(),
            missing: Vec::new(),
            recheck_applied: true,
            set_fields: HashMap::new(),
            people: HashMap::new(),
            notes: Vec::new(),
        };
        let mut recorded = PageWrite::default();
        let planned = self.plan_page(target, &view, &page, &mut recorded).await?;
        let mut tally = Tally {
            notes: std::mem::take(&mut view.notes),
            ..Tally::default()
        };
        tally += self.apply(store, target, planned, recorded, true).await?;
        Ok(tally)
    }
}
