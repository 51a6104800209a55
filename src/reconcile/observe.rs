//! What is: where a pass starts, the GitLab project, the project's issues when markers must be
//! read (listed into the state database, page by page), and per page of Jira issues the stored
//! mirrors and GitLab issues the planner needs, from the listing or read by iid (with the
//! Automation recipe's slots of unmirrored issues). Reads only, apart from settling
//! creates an earlier run left unconfirmed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::outcome::{Outcome, Tally};
use super::{Mode, Reconciler, Target};
use crate::config::Mapping;
use crate::domain::{
    GitlabIid, GitlabIssue, IssueHistory, JiraId, JiraIssue, JiraKey, MappingId, Mirror, PassKind,
    SetFields,
};
use crate::error::Result;
use crate::gitlab::Project;
use crate::plan::{needs_compare, slot_iid, Missing, PlanInput, Rules};
use crate::store::{Checkpoint, SharedMarker, Store};

/// Facts about a GitLab project (its id, the token's role) are looked up again after this long,
/// after `check`, and after GitLab refuses the token, a permission or the project.
const PROJECT_FACTS_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Where a pass starts.
pub(super) struct Start {
    /// `Full` when asked, or when there is no checkpoint yet (first pass, lost state file).
    pub kind: PassKind,
    /// How far the mapping was reconciled before this pass.
    pub checkpoint: Checkpoint,
    /// Creates an earlier run recorded but never confirmed: Jira id → key.
    pub intents: HashMap<JiraId, JiraKey>,
    /// Which of those Jira issues this pass has seen (a full pass forgets the others).
    seen_intents: HashSet<JiraId>,
    /// A full pass over a mapping that had mirrors: the issues seen are noted in the state
    /// database, to find the mirrors whose Jira issue left (`deleted`).
    pub track_seen: bool,
    /// Some issue of the mapping is remembered as gone: each page looks for returns.
    pub any_gone: bool,
}

impl Start {
    /// Whether the whole GitLab project must be listed to read its markers.
    pub fn needs_scan(&self) -> bool {
        self.kind == PassKind::Full || !self.intents.is_empty()
    }

    /// The `updated` bound of the search: the checkpoint less the overlap, on an incremental
    /// pass.
    pub fn since(&self, overlap: Duration) -> Option<DateTime<Utc>> {
        match self.kind {
            PassKind::Full | PassKind::Targeted => None,
            // The overlap is validated to a few days, so this cannot leave chrono's range; if it
            // did, searching everything is the safe answer.
            PassKind::Incremental => self.checkpoint.at().and_then(|c| {
                chrono::Duration::from_std(overlap)
                    .ok()
                    .and_then(|o| c.checked_sub_signed(o))
            }),
        }
    }

    pub fn saw(&mut self, issues: &[JiraIssue]) {
        if self.intents.is_empty() {
            return;
        }
        for j in issues {
            if self.intents.contains_key(&j.id) {
                self.seen_intents.insert(j.id);
            }
        }
    }
}

/// The GitLab side as the planner needs it.
#[derive(Default)]
pub(super) struct GitlabView<'s> {
    /// The GitLab issues of the page being worked on: read by iid, or from the listing.
    pub issues: HashMap<GitlabIid, GitlabIssue>,
    /// Jira id → iid of the issue carrying its marker, for the page's Jira issues (only after
    /// a scan).
    pub by_marker: HashMap<JiraId, GitlabIid>,
    /// After a scan: the whole project's issues, in the state database (so `by_marker` is
    /// complete).
    pub listing: Option<Listing<'s>>,
    /// Things the scan noticed (two issues with one marker).
    pub notes: Vec<String>,
}

/// A pass's listing of the GitLab project, kept in the state database rather than in memory
/// (`store/listing.rs`), and forgotten when the pass is done with it.
pub(super) struct Listing<'s> {
    store: &'s Store,
    mapping: MappingId,
}

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.listings().end(&self.mapping) {
            tracing::warn!("{}", e.report());
        }
    }
}

impl GitlabView<'_> {
    /// Whether the whole project was listed.
    pub fn scanned(&self) -> bool {
        self.listing.is_some()
    }

    /// After a scan: the markers of these Jira issues, and the listed issues the planner may
    /// look at for them (their mirrors', their markers', their recipe slots), in place of the
    /// previous page's.
    pub fn load_page(
        &mut self,
        rules: &Rules,
        jira: &[JiraIssue],
        mirrors: &HashMap<JiraId, Mirror>,
    ) -> Result<()> {
        let Some(listing) = &self.listing else {
            return Ok(());
        };
        let ids: Vec<JiraId> = jira.iter().map(|j| j.id).collect();
        self.by_marker = listing.store.listings().markers(&listing.mapping, &ids)?;
        let iids: Vec<GitlabIid> = mirrors
            .values()
            .map(|m| m.iid)
            .chain(self.by_marker.values().copied())
            .chain(jira.iter().filter_map(|j| slot_iid(rules, j)))
            .collect();
        self.load_issues(&iids)
    }

    /// After a scan: the listed issues with these iids, in place of the previous ones.
    pub fn load_issues(&mut self, iids: &[GitlabIid]) -> Result<()> {
        if let Some(listing) = &self.listing {
            self.issues = listing.store.listings().issues(&listing.mapping, iids)?;
        }
        Ok(())
    }

    /// Issues read by iid: for the planner, and after a scan kept with the listing (for later
    /// pages), their markers counting where no listed issue carries them.
    pub fn add_read(&mut self, read: Vec<GitlabIssue>) -> Result<()> {
        if let Some(listing) = &self.listing {
            listing.store.listings().add_read(&listing.mapping, &read)?;
            for g in &read {
                if let Some(id) = g.jira_id() {
                    self.by_marker.entry(id).or_insert(g.iid);
                }
            }
        }
        self.issues.extend(read.into_iter().map(|g| (g.iid, g)));
        Ok(())
    }
}

/// What the planner gets for one page, beyond the GitLab view: the Jira issues, their stored
/// mirrors, and (after a full pass) the mirrors whose Jira issue left the search.
pub(super) struct PageView<'a> {
    pub jira: &'a [JiraIssue],
    pub mirrors: HashMap<JiraId, Mirror>,
    /// Recipe slots that stored mirrors of other Jira issues point at.
    pub claimed: HashSet<GitlabIid>,
    pub missing: Vec<Missing>,
    pub recheck_applied: bool,
    /// What the reconciler last wrote of the mirrors' Jira fields.
    pub set_fields: HashMap<JiraId, SetFields>,
    /// Jira assignees that map to GitLab members, by Jira identity.
    pub people: HashMap<String, u64>,
    /// Jira assignees found to have no GitLab user, in words.
    pub notes: Vec<String>,
}

impl PageView<'_> {
    pub fn input<'a>(
        &'a self,
        target: &'a Target<'_>,
        view: &'a GitlabView<'_>,
        jira_base_url: &'a str,
        history: &'a HashMap<JiraId, IssueHistory>,
    ) -> PlanInput<'a> {
        PlanInput {
            jira: self.jira,
            mirrors: &self.mirrors,
            gitlab: &view.issues,
            by_marker: &view.by_marker,
            jira_base_url,
            recheck_applied: self.recheck_applied,
            claimed: &self.claimed,
            rules: &target.rules,
            backdate: target.project.can_backdate(),
            history,
            missing: &self.missing,
            set_fields: &self.set_fields,
            people: &self.people,
        }
    }
}

impl Reconciler {
    /// The GitLab project of `mapping`: from the state database when looked up within the last
    /// day, else from GitLab (and remembered, when the pass may write).
    pub(super) async fn project(&self, mode: Mode<'_>, mapping: &Mapping) -> Result<Project> {
        let url = &self.cfg.gitlab.identity();
        if let Some(store) = mode.store() {
            if let Some((project, at)) = store.cache().project(url, &mapping.gitlab_project)? {
                if Utc::now() - at < PROJECT_FACTS_FOR {
                    return Ok(project);
                }
            }
        }
        let project = self.gitlab.project(&mapping.gitlab_project).await?;
        if let Mode::Apply(store) = mode {
            store
                .cache()
                .save_project(url, &mapping.gitlab_project, &project)?;
        }
        Ok(project)
    }

    /// After GitLab refused the token, a permission or the project: look it up again next time.
    pub(super) fn forget_project(&self, mode: Mode<'_>, mapping: &Mapping) {
        if let Mode::Apply(store) = mode {
            if let Err(e) = store
                .cache()
                .forget_project(&self.cfg.gitlab.identity(), &mapping.gitlab_project)
            {
                tracing::warn!("{}", e.report());
            }
        }
    }

    pub(super) fn start(
        &self,
        target: &Target<'_>,
        requested: PassKind,
        store: Option<&Store>,
    ) -> Result<Start> {
        let (checkpoint, intents) = match store {
            Some(s) => (
                s.checkpoints().get(&target.name)?,
                s.intents().pending(&target.name)?.into_iter().collect(),
            ),
            None => (Checkpoint::Never, HashMap::new()),
        };
        // Without a checkpoint everything is compared, and GitLab is scanned for markers so
        // that existing mirrors are adopted, not duplicated (a targeted pass waits for that).
        let kind = if checkpoint.at().is_none() && requested != PassKind::Targeted {
            PassKind::Full
        } else {
            requested
        };
        Ok(Start {
            kind,
            checkpoint,
            intents,
            seen_intents: HashSet::new(),
            track_seen: false,
            any_gone: match store {
                Some(s) => s.facts().has_gone(&target.name)?,
                None => false,
            },
        })
    }

    /// Creates recorded by an earlier run that never confirmed them: adopt those the scan found
    /// by marker.
    pub(super) fn adopt_earlier_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        view: &GitlabView<'_>,
        start: &mut Start,
    ) -> Result<Tally> {
        let mut adopted = Tally::default();
        let Some(listing) = &view.listing else {
            return Ok(adopted);
        };
        let ids: Vec<JiraId> = start.intents.keys().copied().collect();
        let by_marker = listing.store.listings().markers(&listing.mapping, &ids)?;
        start.intents.retain(|jira_id, jira_key| {
            let Some(&iid) = by_marker.get(jira_id) else {
                return true;
            };
            let mirror = Mirror {
                jira_id: *jira_id,
                jira_key: jira_key.clone(),
                iid,
                applied: None,
            };
            match store.mirrors().save(&target.name, &mirror) {
                Ok(()) => {
                    adopted += Outcome::Adopted(iid);
                    tracing::info!(jira = %jira_key, iid = iid.get(), "an earlier create did land; adopted it");
                    false
                }
                Err(e) => {
                    tracing::warn!("{}", e.report());
                    true
                }
            }
        });
        Ok(adopted)
    }

    /// After a full pass: unconfirmed creates whose Jira issue the mapping no longer has
    /// (deleted or moved) are forgotten, so they stop forcing scans.
    pub(super) fn forget_creates_that_left(
        &self,
        store: &Store,
        target: &Target<'_>,
        start: &Start,
    ) -> Result<()> {
        for jira_id in start.intents.keys() {
            if !start.seen_intents.contains(jira_id) {
                store.intents().clear(&target.name, *jira_id)?;
            }
        }
        Ok(())
    }

    /// Every issue of the GitLab project, and which Jira id each marker names, listed page by
    /// page into `db` (the state database, or a dry run's scratch one): memory holds one page.
    /// Two issues with the same marker (a copy made by hand, an older tool) are reported; the
    /// lower iid wins.
    pub(super) async fn scan_project<'s>(
        &self,
        db: &'s Store,
        target: &Target<'_>,
    ) -> Result<GitlabView<'s>> {
        db.listings().begin(&target.name)?;
        // From here on a failure forgets what was listed (the listing's drop).
        let listing = Listing {
            store: db,
            mapping: target.name.clone(),
        };
        let mut notes = Vec::new();
        // The mirrors kept of the project: a listing within them asks GitLab for no count.
        // A dry run's scratch database keeps none (and no mirror table): GitLab is asked.
        let mirrors = db.mirrors().count(&target.name).unwrap_or(0);
        let mut pages = self
            .gitlab
            .issue_listing(target.project.id)
            .expect_about(mirrors);
        let mut page = pages.next_page().await?;
        while let Some(issues) = page {
            // The next page is on its way while this one is written down.
            let (next, shared) = tokio::join!(pages.next_page(), async {
                db.listings().add_listed(&target.name, &issues)
            });
            for SharedMarker {
                jira_id,
                kept,
                left,
            } in shared?
            {
                notes.push(format!(
                    "GitLab issues #{kept} and #{left} both carry the marker of Jira issue {jira_id}; #{kept} is used, #{left} is left alone"
                ));
            }
            page = next?;
        }
        Ok(GitlabView {
            listing: Some(listing),
            notes,
            ..GitlabView::default()
        })
    }

    /// The stored mirrors of one page's Jira issues, and their GitLab issues in `view`: read by
    /// iid (one request per page) unless the project was scanned. Issues whose Jira version is
    /// already applied (or older) need no GitLab read on an incremental pass. The Automation
    /// recipe's slots of unmirrored issues ride along in the same read.
    pub(super) async fn observe_page<'a>(
        &self,
        store: Option<&Store>,
        target: &Target<'_>,
        issues: &'a [JiraIssue],
        view: &mut GitlabView<'_>,
        recheck_applied: bool,
    ) -> Result<PageView<'a>> {
        let mirrors = stored_mirrors(store, target, issues)?;
        let slots = super::recipe::unmirrored_slots(&target.rules, issues, &mirrors);
        let claimed = match store {
            Some(s) if !slots.is_empty() => {
                s.mirrors()
                    .claimed(&target.name, &target.siblings, &slots)?
            }
            _ => HashSet::new(),
        };
        if view.scanned() {
            view.load_page(&target.rules, issues, &mirrors)?;
        } else {
            view.issues.clear();
        }
        // A scan pages by offset or keyset: an issue deleted meanwhile may shift the rest, and a
        // proxy may drop the paging headers. A linked issue missing from the view is fetched by
        // iid before the planner could take it for deleted and create a duplicate.
        let wanted: HashSet<GitlabIid> = issues
            .iter()
            .filter_map(|j| {
                let m = mirrors.get(&j.id)?;
                needs_compare(j, Some(m), recheck_applied).then_some(m.iid)
            })
            .chain(slots)
            .filter(|iid| !view.issues.contains_key(iid))
            .collect();
        if !wanted.is_empty() {
            let wanted: Vec<GitlabIid> = wanted.into_iter().collect();
            let read = self
                .gitlab
                .issues_by_iid(target.project.id, &wanted)
                .await?;
            view.add_read(read)?;
        }
        let set_fields = recorded_fields(store, target, &mirrors)?;
        // Only the issues compared need their assignee: an idle pass asks GitLab nothing.
        let compared = issues
            .iter()
            .filter(|j| needs_compare(j, mirrors.get(&j.id), recheck_applied));
        let notes = self.resolve_people(target, compared).await?;
        Ok(PageView {
            jira: issues,
            mirrors,
            claimed,
            missing: Vec::new(),
            recheck_applied,
            set_fields,
            people: target.assignable(),
            notes: notes.into_iter().collect(),
        })
    }
}

/// The stored mirrors of these Jira issues (none without a state database).
fn stored_mirrors(
    store: Option<&Store>,
    target: &Target<'_>,
    issues: &[JiraIssue],
) -> Result<HashMap<JiraId, Mirror>> {
    let Some(s) = store else {
        return Ok(HashMap::new());
    };
    let ids: Vec<JiraId> = issues.iter().map(|j| j.id).collect();
    s.mirrors().of(&target.name, &target.siblings, &ids)
}

/// What the reconciler last wrote of these mirrors' Jira fields (when the mapping mirrors any).
fn recorded_fields(
    store: Option<&Store>,
    target: &Target<'_>,
    mirrors: &HashMap<JiraId, Mirror>,
) -> Result<HashMap<JiraId, SetFields>> {
    match store {
        Some(s) if target.rules.mirrors_fields() => {
            let ids: Vec<JiraId> = mirrors.keys().copied().collect();
            s.set_fields().of(&target.name, &ids)
        }
        _ => Ok(HashMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use jgr_sim::world::{SimWorld, WorldOptions};

    use super::super::{Mode, Reconciler, Target};
    use crate::config::Config;
    use crate::domain::PassKind;
    use crate::metrics::Metrics;
    use crate::store::Store;

    /// A full pass's view holds the page being worked on, never the project: the listing is in
    /// the state database, and the page's issues are found there by marker (here after the
    /// database lost its mirror rows) without a GitLab read.
    #[tokio::test]
    async fn a_scanned_page_is_looked_up_in_the_store_not_held_in_memory() {
        // Removed when the test passes.
        let dir = crate::test_dir("observe");
        let w = SimWorld::start(WorldOptions::new(&dir))
            .await
            .expect("fakes start");
        for i in 0..250 {
            w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
        }
        let path = std::path::Path::new("sim-config.toml");
        let cfg = Config::parse(&w.config_toml(), path, &|_| None).expect("config");
        let r = Reconciler::new(cfg, Arc::new(Metrics::new())).expect("reconciler");
        let store = Store::open(&w.state_path()).expect("store");
        let reports = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
        assert!(reports[0].ok(), "{:?}", reports[0].failures);
        rusqlite::Connection::open(w.state_path())
            .and_then(|c| c.execute("DELETE FROM mirror", []))
            .expect("the mirror rows are lost");

        let mapping = &r.config().mappings[0];
        let target = Target {
            mapping,
            name: mapping.id(),
            project: r
                .project(Mode::Apply(&store), mapping)
                .await
                .expect("project"),
            siblings: r.siblings(mapping),
            rules: r.config().rules(mapping),
            backdate_checked: AtomicBool::new(false),
            board: Default::default(),
            fields: Default::default(),
            milestones: Default::default(),
            version_starts: Default::default(),
            people: Default::default(),
        };
        let mut view = r.scan_project(&store, &target).await.expect("scan");
        assert!(
            view.issues.is_empty() && view.by_marker.is_empty(),
            "{} issues held after the scan",
            view.issues.len()
        );
        let filter = mapping.search_filter(None);
        let mut pages = r.jira().pages(&filter);
        let page = pages.next_page().await.expect("search").expect("a page");
        assert!(page.issues.len() < 250, "a page, not the project");
        let requests = w.gitlab.requests();
        let seen = r
            .observe_page(Some(&store), &target, &page.issues, &mut view, true)
            .await
            .expect("observe");
        assert!(seen.mirrors.is_empty(), "no rows left");
        assert_eq!(w.gitlab.requests(), requests, "nothing read by iid");
        assert_eq!(view.by_marker.len(), page.issues.len(), "found by marker");
        assert_eq!(view.issues.len(), page.issues.len(), "the page's issues");
        let first = page.issues[0].id;
        assert_eq!(
            store
                .listings()
                .markers(&target.name, &[first])
                .expect("read")
                .len(),
            1
        );
        drop(view);
        assert!(
            store
                .listings()
                .markers(&target.name, &[first])
                .expect("read")
                .is_empty(),
            "the listing is forgotten with the pass's view"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
