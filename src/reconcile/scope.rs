//! What a pass covers, and the Jira searches that read it: the mapping's window (everything on
//! a full pass), or the issues webhook events named, 50 at a time.

use std::collections::HashSet;

use super::observe::Start;
use super::{Reconciler, Target};
use crate::config::Mapping;
use crate::domain::{JiraId, PassKind};

/// What a pass covers: the mapping's window (incremental or full), or the issues events named.
#[derive(Clone, Copy)]
pub(super) enum Scope<'a> {
    Window(PassKind),
    /// The issues events named; `projects`, when known, are their Jira projects (only their
    /// mappings look).
    Ids {
        ids: &'a [JiraId],
        projects: Option<&'a HashSet<String>>,
    },
}

impl Scope<'_> {
    pub fn kind(self) -> PassKind {
        match self {
            Scope::Window(kind) => kind,
            Scope::Ids { .. } => PassKind::Targeted,
        }
    }

    pub fn concerns(self, mapping: &Mapping) -> bool {
        match self {
            Scope::Ids {
                projects: Some(projects),
                ..
            } => projects.contains(&mapping.jira_project.to_ascii_uppercase()),
            _ => true,
        }
    }
}

/// One Jira search of a pass.
pub(super) struct Search {
    pub jql: String,
    /// Cloud's `reconcileIssues`: ids whose latest version the search must see.
    pub reconcile: Vec<JiraId>,
    /// For a search of ids: the mapping's filter, to search again without some of them.
    filter: Option<String>,
}

impl Search {
    /// `<filter> AND id in (ids)`, reading those ids at their latest version.
    fn of_ids(filter: String, ids: Vec<JiraId>) -> Search {
        let list: Vec<String> = ids.iter().map(JiraId::to_string).collect();
        Search {
            jql: format!("{filter} AND id in ({})", list.join(", ")),
            reconcile: ids,
            filter: Some(filter),
        }
    }

    /// After Jira refused this search of ids because some do not exist: the search without
    /// them, and which they were. `None` when the error is anything else.
    pub fn without_missing(&mut self, e: &crate::error::Error) -> Option<Vec<JiraId>> {
        let filter = self.filter.clone()?;
        let crate::error::Error::Api(api) = e else {
            return None;
        };
        let gone: Vec<JiraId> = crate::jira::missing_ids_in(api)
            .into_iter()
            .filter(|id| self.reconcile.contains(id))
            .collect();
        if gone.is_empty() {
            return None;
        }
        let rest: Vec<JiraId> = self
            .reconcile
            .iter()
            .copied()
            .filter(|id| !gone.contains(id))
            .collect();
        *self = Search::of_ids(filter, rest);
        Some(gone)
    }
}

impl Reconciler {
    /// The Jira searches of a pass: the mapping's window (everything on a full pass), or its
    /// issues among the ids events named, 50 at a time (with Cloud's `reconcileIssues`, so the
    /// search sees the write that caused the event however far its index lags).
    pub(super) fn searches(
        &self,
        target: &Target<'_>,
        start: &Start,
        scope: Scope<'_>,
    ) -> Vec<Search> {
        match scope {
            Scope::Window(_) => vec![Search {
                jql: target.mapping.search_filter(start.since(self.cfg.overlap)),
                reconcile: Vec::new(),
                filter: None,
            }],
            Scope::Ids { ids, .. } => ids
                .chunks(crate::jira::MAX_RECONCILE_IDS)
                .map(|chunk| Search::of_ids(target.mapping.search_filter(None), chunk.to_vec()))
                .collect(),
        }
    }
}
