//! What the simulators' outboxes (Stripe webhooks, App Store notifications, RTDN, Roku
//! pushes, SNS messages) share about delivery rounds.

use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;

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

/// How many sends of one delivery round are in flight at once: a burst (a clock moved past
/// a thousand renewals) must not open more connections than a receiver can answer before
/// the sends time out.
pub(crate) const MAX_CONCURRENT_SENDS: usize = 32;

/// Runs `sends` at most [`MAX_CONCURRENT_SENDS`] at a time, each in a task of its own: their
/// results in the order given, `None` for one whose task failed.
pub(crate) async fn send_all<F>(sends: Vec<F>) -> Vec<Option<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut results: Vec<Option<F::Output>> = sends.iter().map(|_| None).collect();
    let mut running = JoinSet::new();
    let mut queue = sends.into_iter().enumerate();
    loop {
        while running.len() < MAX_CONCURRENT_SENDS
            && let Some((index, send)) = queue.next()
        {
            running.spawn(async move { (index, send.await) });
        }
        let Some(joined) = running.join_next().await else {
            return results;
        };
        if let Ok((index, result)) = joined
            && let Some(slot) = results.get_mut(index)
        {
            *slot = Some(result);
        }
    }
}

/// A client for an outbox, from `builder` (a plain one, or one bound to a Unix socket): no
/// proxy (endpoints are local more often than not), no redirects (each provider counts a
/// 3xx as a failed attempt), no retries of its own (the outbox retries on its schedule;
/// reqwest's default copies each request's headers in case it retries), `timeout` per
/// attempt, and the provider's `User-Agent` where it sends one.
pub(crate) fn outbox_client(
    builder: reqwest::ClientBuilder,
    timeout: Duration,
    user_agent: Option<&'static str>,
) -> Result<reqwest::Client, String> {
    let builder = builder
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .timeout(timeout);
    match user_agent {
        Some(user_agent) => builder.user_agent(user_agent),
        None => builder,
    }
    .build()
    .map_err(|error| error_chain(&error))
}

/// An error and its causes, `: `-separated (reqwest's own message rarely says why).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
