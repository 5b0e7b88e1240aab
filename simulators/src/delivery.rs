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

/// How much of an endpoint's answer an outbox keeps with the attempt, in characters.
pub(crate) const RESPONSE_BODY_LIMIT: usize = 1000;

/// What an outbox keeps of an endpoint's answer beside its status.
pub(crate) struct Answer {
    /// The answer's first [`RESPONSE_BODY_LIMIT`] characters, bytes that are not UTF-8
    /// replaced; `None` for an empty answer.
    pub body: Option<String>,
    /// Why reading the answer stopped short.
    pub error: Option<String>,
}

/// Reads an endpoint's answer up to [`RESPONSE_BODY_LIMIT`] bytes, enough for as many
/// characters.
pub(crate) async fn read_answer(response: &mut reqwest::Response) -> Answer {
    let mut body = Vec::new();
    let mut error = None;
    while body.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(failure) => {
                error = Some(error_chain(&failure));
                break;
            }
        }
    }
    let text = kept_text(body);
    Answer {
        body: Some(text).filter(|text| !text.is_empty()),
        error,
    }
}

/// The first [`RESPONSE_BODY_LIMIT`] characters of `body` as text, without going through
/// it character by character when it is shorter (the usual answer is a few bytes).
fn kept_text(body: Vec<u8>) -> String {
    let mut text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    // No character is shorter than a byte: a text within the limit in bytes is whole.
    if text.len() > RESPONSE_BODY_LIMIT
        && let Some((end, _)) = text.char_indices().nth(RESPONSE_BODY_LIMIT)
    {
        text.truncate(end);
    }
    text
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

#[cfg(test)]
mod tests {
    use super::{RESPONSE_BODY_LIMIT, kept_text};

    #[test]
    fn an_answer_is_kept_as_text_up_to_the_limit_in_characters() {
        assert_eq!(
            kept_text(br#"{"received":true}"#.to_vec()),
            r#"{"received":true}"#
        );
        assert_eq!(kept_text(b"ok \xff".to_vec()), "ok \u{fffd}");
        let long = "å".repeat(RESPONSE_BODY_LIMIT + 5);
        let kept = kept_text(long.clone().into_bytes());
        assert_eq!(kept.chars().count(), RESPONSE_BODY_LIMIT);
        assert!(long.starts_with(&kept));
        let ascii = "x".repeat(RESPONSE_BODY_LIMIT);
        assert_eq!(kept_text(ascii.clone().into_bytes()), ascii);
    }
}
