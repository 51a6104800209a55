//! The status board (`status_board`): a GitLab issue board with one label list per Jira status
//! of the "In Progress" category, in the workflow's order. GitLab's Issue stage (Free
//! included) ends when an issue first gets a label that has a list on a board, so the labels
//! and lists must exist before any mirror gets such a label.
//!
//! What is not ours stays: a list someone else added is never removed or moved, and a board
//! of that name someone made is adopted (our lists are added beside theirs). Missing lists go
//! at the end, in workflow order; a list moved by hand stays where it was put.

/// A board of the project as the planner needs it: its id, name, and its label lists' labels
/// in position order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenBoard {
    pub id: u64,
    pub name: String,
    pub lists: Vec<String>,
}

/// Which board the status board is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardChoice {
    Reuse(u64),
    Create,
}

/// What keeping the status board takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardPlan {
    pub board: BoardChoice,
    /// Status labels that do not exist yet, in workflow order.
    pub create_labels: Vec<String>,
    /// Status labels the board has no list for, in workflow order.
    pub add_lists: Vec<String>,
    /// Lists on the board that are not ours, in position order (kept as they are).
    pub others: Vec<String>,
    /// Every list the board should have (ours), in workflow order.
    pub wanted: Vec<String>,
}

impl BoardPlan {
    /// Nothing to write.
    pub fn is_done(&self) -> bool {
        matches!(self.board, BoardChoice::Reuse(_))
            && self.create_labels.is_empty()
            && self.add_lists.is_empty()
    }

    /// A dry run's lines: what would be written.
    pub fn describe(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self.board {
            BoardChoice::Create => out.push(format!("board   create \"{name}\"")),
            BoardChoice::Reuse(id) if !self.is_done() => {
                out.push(format!("board   keep \"{name}\" (board {id})"));
            }
            BoardChoice::Reuse(_) => {}
        }
        for label in &self.create_labels {
            out.push(format!("label   create {label}"));
        }
        for label in &self.add_lists {
            out.push(format!("list    add {label} to \"{name}\""));
        }
        out
    }
}

/// The plan for the board called `name`, given the "In Progress" statuses' labels in workflow
/// order (`wanted`), the project's boards, the labels the project can use, and the board this
/// mapping kept before (`remembered`). Of several boards with the name, the remembered one is
/// kept, else the one holding most of our lists (the oldest on a tie).
pub fn status_board(
    name: &str,
    wanted: &[String],
    boards: &[SeenBoard],
    labels: &[String],
    remembered: Option<u64>,
) -> BoardPlan {
    let named = boards.iter().filter(|b| b.name == name);
    let ours = |b: &SeenBoard| wanted.iter().filter(|w| b.lists.contains(w)).count();
    let chosen = named
        .clone()
        .find(|b| Some(b.id) == remembered)
        .or_else(|| named.min_by_key(|b| (std::cmp::Reverse(ours(b)), b.id)));
    let lists: &[String] = chosen.map_or(&[], |b| b.lists.as_slice());
    BoardPlan {
        board: chosen.map_or(BoardChoice::Create, |b| BoardChoice::Reuse(b.id)),
        create_labels: wanted
            .iter()
            .filter(|w| !labels.contains(w))
            .cloned()
            .collect(),
        add_lists: wanted
            .iter()
            .filter(|w| !lists.contains(w))
            .cloned()
            .collect(),
        others: lists
            .iter()
            .filter(|l| !wanted.contains(l))
            .cloned()
            .collect(),
        wanted: wanted.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn board(id: u64, name: &str, lists: &[&str]) -> SeenBoard {
        SeenBoard {
            id,
            name: name.into(),
            lists: strings(lists),
        }
    }

    const NAME: &str = "Jira workflow";

    #[test]
    fn a_project_without_the_board_gets_it_with_every_list_in_workflow_order() {
        let wanted = strings(&["s::In Progress", "s::In Review"]);
        let plan = status_board(
            NAME,
            &wanted,
            &[board(1, "Dev", &["s::In Review"])],
            &strings(&["s::In Review"]),
            None,
        );
        assert_eq!(plan.board, BoardChoice::Create);
        assert_eq!(plan.create_labels, strings(&["s::In Progress"]));
        assert_eq!(plan.add_lists, wanted);
        assert!(plan.others.is_empty());
        assert_eq!(
            plan.describe(NAME),
            [
                "board   create \"Jira workflow\"",
                "label   create s::In Progress",
                "list    add s::In Progress to \"Jira workflow\"",
                "list    add s::In Review to \"Jira workflow\""
            ]
        );
    }

    #[test]
    fn a_board_that_has_everything_needs_nothing_and_keeps_other_lists() {
        let wanted = strings(&["s::A", "s::B"]);
        let b = board(4, NAME, &["Doing", "s::B", "s::A"]);
        let plan = status_board(
            NAME,
            &wanted,
            &[b],
            &strings(&["Doing", "s::A", "s::B"]),
            None,
        );
        assert!(plan.is_done(), "{plan:?}");
        assert!(plan.describe(NAME).is_empty());
        assert_eq!(plan.others, strings(&["Doing"]));
    }

    #[test]
    fn a_person_s_board_of_that_name_is_adopted_and_only_our_missing_lists_added() {
        let wanted = strings(&["s::A", "s::B", "s::C"]);
        let b = board(9, NAME, &["triage", "s::B"]);
        let plan = status_board(
            NAME,
            &wanted,
            &[b],
            &strings(&["triage", "s::A", "s::B"]),
            None,
        );
        assert_eq!(plan.board, BoardChoice::Reuse(9));
        assert_eq!(plan.add_lists, strings(&["s::A", "s::C"]));
        assert_eq!(plan.create_labels, strings(&["s::C"]));
        assert_eq!(plan.others, strings(&["triage"]));
        assert_eq!(
            plan.describe(NAME)[0],
            "board   keep \"Jira workflow\" (board 9)"
        );
    }

    #[test]
    fn of_boards_sharing_the_name_the_remembered_then_the_fullest_then_the_oldest_is_kept() {
        let wanted = strings(&["s::A", "s::B"]);
        let boards = [
            board(3, NAME, &[]),
            board(5, NAME, &["s::A"]),
            board(7, NAME, &["s::A"]),
            board(8, "Other", &["s::A", "s::B"]),
        ];
        let pick = |remembered| status_board(NAME, &wanted, &boards, &wanted, remembered).board;
        assert_eq!(pick(None), BoardChoice::Reuse(5));
        assert_eq!(pick(Some(3)), BoardChoice::Reuse(3));
        assert_eq!(
            pick(Some(8)),
            BoardChoice::Reuse(5),
            "not a board of that name"
        );
        let empty = status_board(NAME, &wanted, &boards[..1], &wanted, None);
        assert_eq!(empty.board, BoardChoice::Reuse(3));
    }

    #[test]
    fn carrying_out_a_plan_leaves_nothing_to_do_and_touches_no_list_of_theirs() {
        let wanted = strings(&["s::A", "s::B", "s::C"]);
        let starts = [
            vec![],
            vec![board(2, NAME, &["x", "s::C"])],
            vec![board(2, NAME, &["s::B"]), board(3, NAME, &["y"])],
        ];
        for boards in starts {
            let mut boards = boards.clone();
            let mut labels = strings(&["x", "y", "s::B"]);
            let plan = status_board(NAME, &wanted, &boards, &labels, None);
            let id = match plan.board {
                BoardChoice::Reuse(id) => id,
                BoardChoice::Create => {
                    boards.push(board(99, NAME, &[]));
                    99
                }
            };
            labels.extend(plan.create_labels.iter().cloned());
            let before: Vec<String> = boards.iter().flat_map(|b| b.lists.clone()).collect();
            let kept = boards.iter_mut().find(|b| b.id == id).expect("the board");
            kept.lists.extend(plan.add_lists.iter().cloned());
            let again = status_board(NAME, &wanted, &boards, &labels, Some(id));
            assert!(again.is_done(), "{again:?}");
            let after: Vec<String> = boards.iter().flat_map(|b| b.lists.clone()).collect();
            assert!(before.iter().all(|l| after.contains(l)), "nothing removed");
        }
    }

    #[test]
    fn without_in_progress_statuses_the_board_is_still_kept_but_empty() {
        let plan = status_board(NAME, &[], &[], &[], None);
        assert_eq!(plan.board, BoardChoice::Create);
        assert!(plan.add_lists.is_empty() && plan.create_labels.is_empty());
    }
}
