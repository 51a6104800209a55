//! What one page of a pass changed, across the store's concerns, written in one transaction:
//! links saved (their intents cleared with them), versions applied, intents of creates that
//! surely did not happen, and what Jira said (facts, transitions, issues that left or came
//! back). A crash leaves a page either recorded whole or not at all.

use chrono::{DateTime, Utc};

use super::codec::now_text;
use super::{facts, intents, mirrors, JiraFact, Store};
use crate::domain::{GoneReason, JiraId, MappingId, Mirror, SetFields, Transition};
use crate::error::Result;

/// What one page of a pass changed in the mapping.
#[derive(Debug, Default)]
pub struct PageWrite {
    /// Links to save (created, adopted or moved issues), with the Jira version applied.
    pub mirrors: Vec<Mirror>,
    /// Existing mirrors that now agree with this Jira version: (Jira id, its `updated`).
    pub applied: Vec<(JiraId, DateTime<Utc>)>,
    /// Creates that surely did not happen (refused, or never sent): their intents go.
    pub cleared_intents: Vec<JiraId>,
    /// What Jira said about the page's issues, for those whose version is new to the store.
    pub facts: Vec<JiraFact>,
    /// Status transitions read from changelogs: (Jira id, transition).
    pub transitions: Vec<(JiraId, Transition)>,
    /// Mirrored issues that left the mapping, their policy applied: (Jira id, why).
    pub gone: Vec<(JiraId, GoneReason)>,
    /// Issues remembered as gone that the search returned again.
    pub back: Vec<JiraId>,
    /// Jira's fields as now written on mirrors (`labels_from`, `due_date`).
    pub set_fields: Vec<(JiraId, SetFields)>,
}

impl PageWrite {
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty()
            && self.applied.is_empty()
            && self.cleared_intents.is_empty()
            && self.facts.is_empty()
            && self.transitions.is_empty()
            && self.gone.is_empty()
            && self.back.is_empty()
            && self.set_fields.is_empty()
    }
}

impl Store {
    /// Write what one page of a pass changed, in one transaction (nothing, for a page that
    /// changed nothing: an idle pass writes nothing).
    pub fn commit_page(&self, mapping: &MappingId, w: &PageWrite) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let now = now_text();
        self.with(|c| {
            let tx = c.transaction()?;
            mirrors::write_links(&tx, mapping, &w.mirrors, &now)?;
            intents::clear_in(&tx, mapping, w.cleared_intents.iter().copied())?;
            mirrors::write_applied(&tx, mapping, &w.applied)?;
            facts::write_facts(&tx, mapping, &w.facts)?;
            facts::write_transitions(&tx, mapping, &w.transitions)?;
            facts::write_gone(&tx, mapping, &w.gone, &w.back, &now)?;
            super::set_fields::write(&tx, mapping, &w.set_fields)?;
            tx.commit()
        })
    }
}
