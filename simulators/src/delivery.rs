//! What the simulators' outboxes (App Store notifications, RTDN, Roku pushes, SNS messages)
//! share about delivery rounds.

use std::time::Duration;

use tokio::sync::Notify;

/// Waits, at most `limit`, until `busy` says no delivery is under way, checking again each
/// time a round signals `finished`. A host settling after a clock move calls it after its
/// own round, so that what a concurrent round (the background loop) had claimed of what fell
/// due has been tried too before the move answers.
pub(crate) async fn until_idle(finished: &Notify, limit: Duration, busy: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let woken = finished.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if !busy() || tokio::time::timeout_at(deadline, woken).await.is_err() {
            return;
        }
    }
}
