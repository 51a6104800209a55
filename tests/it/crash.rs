//! Crashes, a lost state file and two processes at once, with the real binary where it
//! matters: whatever happens to the process, each Jira issue ends with exactly one GitLab issue.

use std::time::{Duration, Instant};

use jgr_sim::world::SimWorld;
use jira_gitlab_reconciler::domain::{PassKind, PassOutcome};

use crate::harness::*;

fn remove_state(w: &SimWorld) {
    let db = w.state_path();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    assert!(!db.exists());
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 at several points of a backfill, then a run to completion.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_backfill_then_rerun_converges_without_duplicates() {
    let w = world("kill9", |_| {}).await;
    const N: usize = 300;
    seed_issues(&w, N, 5);
    let args = reconcile_args(&w);
    // The first kill is timed by progress rather than the clock, so that one surely lands in
    // the middle of the creates however fast or slow (or loaded) this machine is.
    let mut child = command(&args, &[]).spawn().expect("spawn");
    let deadline = Instant::now() + EVENT_WAIT;
    while w.gitlab.issues(PROJECT).len() < 25 {
        assert!(Instant::now() < deadline, "no progress in {EVENT_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let mut seen = vec![(0, w.gitlab.issues(PROJECT).len(), false)];
    // Then at whatever point a few clock times catch (start-up, the middle, or the end: any
    // outcome is valid), with Jira moving on while the reconciler is down.
    for (round, after_ms) in [50u64, 150, 400].into_iter().enumerate() {
        let mut child = command(&args, &[]).spawn().expect("spawn");
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        let finished_already = child.try_wait().expect("try_wait").is_some();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let count = w.gitlab.issues(PROJECT).len();
        seen.push((after_ms, count, finished_already));
        w.clock.advance(MINUTE);
        w.jira
            .transition(&format!("VSA-{}", 1 + round * 3), "Done", "done");
        w.jira
            .rename(&format!("VSA-{}", 2 + round * 3), "Renamed while down");
        w.jira
            .create_issue("VSA", &format!("Created while down {round}"), "Task");
    }

    let started = Instant::now();
    let out = run_binary(args.clone()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{seen:?}\n{stdout}\n{stderr}");
    eprintln!(
        "kill points (ms or 0 = by progress, GitLab issues, finished): {seen:?}; final run {:?}",
        started.elapsed()
    );
    assert!(
        seen.iter().any(|(_, n, done)| *n > 0 && *n < N && !done),
        "no kill landed in the middle of the backfill: {seen:?}"
    );
    assert_eq!(assert_converged(&w, "VSA", PROJECT), N + 3);
    for k in [2, 5, 8] {
        let j = w.jira.issue(&format!("VSA-{k}")).expect("issue");
        let g = mirror_of(&w, PROJECT, &j.id);
        assert_eq!(g.title, "Renamed while down");
    }
    let st = state_status(&w).expect("state");
    assert_eq!((st.mirrors, st.pending_intents), ((N + 3) as u64, 0));
    assert_eq!(st.last_pass.expect("pass").outcome, PassOutcome::Ok);

    // And the next run has nothing left to do.
    let writes = w.gitlab.writes();
    let out = run_binary(args).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(w.gitlab.writes(), writes, "{}", text(&out).0);
}

// ---------------------------------------------------------------------------------------------
// 4. A lost state file is rebuilt from the markers in GitLab.

#[tokio::test]
async fn deleted_state_file_is_rebuilt_from_markers_and_nothing_is_created() {
    let w = world("lost-state", |_| {}).await;
    seed_issues(&w, 40, 5);
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 40);
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-1", "Done", "done");
    pass_ok(&w, PassKind::Incremental).await;
    let checkpoint = state_status(&w).expect("state").checkpoint;

    remove_state(&w);
    let writes = w.gitlab.writes();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        r.kind,
        PassKind::Full,
        "no checkpoint: everything is compared"
    );
    assert_eq!(
        (r.counts.created, r.counts.adopted, r.counts.unchanged),
        (0, 40, 0),
        "{}",
        r.summary()
    );
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "rebuilding the mapping writes nothing"
    );
    let st = state_status(&w).expect("state");
    assert_eq!(st.mirrors, 40);
    assert_eq!(st.checkpoint, checkpoint, "the same newest update");
    assert_converged(&w, "VSA", PROJECT);

    // Lost again, this time with Jira changes made meanwhile: only those are written.
    remove_state(&w);
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-2", "Done", "done");
    let new = w.jira.create_issue("VSA", "After the loss", "Task");
    let writes = w.gitlab.writes();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (r.counts.created, r.counts.closed, r.counts.adopted),
        (1, 1, 40),
        "{}",
        r.summary()
    );
    assert_eq!(w.gitlab.writes(), writes + 2);
    mirror_of(&w, PROJECT, &new.id);
    assert_converged(&w, "VSA", PROJECT);
}

// ---------------------------------------------------------------------------------------------
// 7. Two processes started together on one state database.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_at_once_on_one_state_database_do_not_duplicate() {
    let w = world("two-procs", |_| {}).await;
    const N: usize = 120;
    seed_issues(&w, N, 5);
    let args = reconcile_args(&w);
    let (a, b) = tokio::join!(run_binary(args.clone()), run_binary(args.clone()));
    let (out_a, err_a) = text(&a);
    let (out_b, err_b) = text(&b);
    assert_eq!(a.status.code(), Some(0), "{out_a}\n{err_a}");
    assert_eq!(b.status.code(), Some(0), "{out_b}\n{err_b}");
    let both = format!("{out_a}{out_b}");
    assert!(
        both.contains(&format!("full pass: created {N},")),
        "one of them backfills: {both}"
    );
    assert!(
        both.contains("incremental pass: created 0,"),
        "the other waits for the lock, then finds nothing to do: {both}"
    );
    assert_eq!(assert_converged(&w, "VSA", PROJECT), N);
    assert_eq!(w.gitlab.issues(PROJECT).len(), N);
    assert_eq!(
        w.gitlab.writes(),
        N + N / 5,
        "creates and closes, once each"
    );
}
