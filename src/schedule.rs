//! Cron strings for the service's schedule. tokio-cron-scheduler takes 6 fields, seconds first,
//! evaluated in UTC here (its time-zone-aware jobs have open bugs around DST, see README).

use crate::error::{Error, Result};

/// Check `expr` the way the scheduler will parse it, with an error that names `key`.
pub fn validate(key: &str, expr: &str) -> Result<()> {
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        return Err(Error::Config(format!(
            "{key} = {expr:?} looks like a 5-field crontab line, but this schedule takes 6 fields, \
             seconds first: write \"0 {expr}\" to run at second 0"
        )));
    }
    let parsed = tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}));
    if fields < 6 || parsed.is_err() {
        return Err(Error::Config(format!(
            "{key} = {expr:?} is not a valid schedule: use 6 fields, seconds first \
             (sec min hour day-of-month month day-of-week), e.g. \"0 * * * * *\" for every minute"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_six_fields() {
        validate("schedule.reconcile", "0 * * * * *").expect("every minute");
        validate("schedule.reconcile", "*/5 * * * * *").expect("every 5 s");
        validate("schedule.full_resync", "0 30 3 * * *").expect("nightly");
    }

    #[test]
    fn refuses_garbage_and_names_the_key() {
        for bad in ["", "every minute", "61 * * * * *", "* * *"] {
            let e = validate("schedule.reconcile", bad)
                .expect_err(bad)
                .to_string();
            assert!(e.contains("schedule.reconcile"), "{e}");
        }
    }
}
