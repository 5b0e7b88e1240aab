//! The answers kept for `Idempotency-Key`s: for 24 hours on the host's clock, as Stripe
//! keeps them, each as the endpoint, a digest of the parameters and the answer's compact
//! JSON, forgotten in the order they were stored once their time is up.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::HashMap;
use sha2::{Digest, Sha256};

use super::compact::CompactJson;
use super::form::Form;

/// How long Stripe keeps an idempotency key.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// The answer to a request with an `Idempotency-Key`.
pub(crate) struct StoredResponse {
    /// `POST /v1/...`.
    pub endpoint: String,
    /// The parameters as first sent.
    parameters: Parameters,
    pub status: u16,
    body: CompactJson,
    pub created: DateTime<Utc>,
    /// Which storing of the key this is.
    serial: u64,
}

impl StoredResponse {
    /// The path of [`StoredResponse::endpoint`], as Stripe names it in its messages.
    pub fn path(&self) -> &str {
        self.endpoint
            .split_once(' ')
            .map_or(self.endpoint.as_str(), |(_, path)| path)
    }

    /// Whether these are the parameters first sent.
    pub fn same_parameters(&self, parameters: &Parameters) -> bool {
        self.parameters == *parameters
    }

    pub fn body(&self) -> CompactJson {
        self.body.clone()
    }

    fn live(&self, now: DateTime<Utc>) -> bool {
        now - self.created < IDEMPOTENCY_WINDOW
    }
}

/// What a request's parameters are, for telling a retry from another request under the
/// same key: a SHA-256 of every name, value and nesting, in a fixed order. Taken before
/// the operation consumes the form, so the form need not be kept whole beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parameters([u8; 32]);

impl Parameters {
    pub fn of(form: &Form) -> Self {
        struct Sha(Sha256);
        impl Hasher for Sha {
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
            fn finish(&self) -> u64 {
                0
            }
        }
        let mut hasher = Sha(Sha256::new());
        form.hash(&mut hasher);
        Self(hasher.0.finalize().into())
    }
}

/// The keys and their answers.
#[derive(Default)]
pub(crate) struct IdempotencyKeys {
    stored: HashMap<String, StoredResponse>,
    /// Keys in the order they were stored, with when and which storing.
    order: VecDeque<(DateTime<Utc>, String, u64)>,
    next_serial: u64,
}

impl IdempotencyKeys {
    /// The live answer stored for `key`, after forgetting the answers whose time is up.
    pub fn get(&mut self, key: &str, now: DateTime<Utc>) -> Option<&StoredResponse> {
        self.expire(now);
        self.stored.get(key).filter(|stored| stored.live(now))
    }

    /// Stores the answer to a request with `key`.
    pub fn insert(
        &mut self,
        key: String,
        endpoint: String,
        parameters: Parameters,
        status: u16,
        body: CompactJson,
        now: DateTime<Utc>,
    ) {
        self.next_serial += 1;
        self.order.push_back((now, key.clone(), self.next_serial));
        self.stored.insert(
            key,
            StoredResponse {
                endpoint,
                parameters,
                status,
                body,
                created: now,
                serial: self.next_serial,
            },
        );
    }

    /// Forgets, oldest first, the answers stored more than a day before `now`. (If the
    /// host's clock went back, a younger answer stored earlier waits for its turn; `get`
    /// does not show an answer whose time is up.)
    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some((created, _, _)) = self.order.front()
            && now - *created >= IDEMPOTENCY_WINDOW
        {
            let Some((_, key, serial)) = self.order.pop_front() else {
                break;
            };
            if self
                .stored
                .get(&key)
                .is_some_and(|stored| stored.serial == serial)
            {
                self.stored.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.stored.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::hours(hours)
    }

    #[test]
    fn answers_live_a_day_and_are_then_forgotten() {
        let parameters = |body: &[u8]| Parameters::of(&Form::parse(body).unwrap());
        let sent = parameters(b"amount=100&metadata[a]=1");
        let other = parameters(b"amount=100&metadata[a]=2");
        let same_reordered = parameters(b"metadata[a]=1&amount=100");
        let mut keys = IdempotencyKeys::default();
        keys.insert(
            "sk:a".into(),
            "POST /v1/x".into(),
            sent,
            200,
            CompactJson::new(&json!({"id": "x"})),
            at(0),
        );
        keys.insert(
            "sk:b".into(),
            "POST /v1/x".into(),
            sent,
            402,
            CompactJson::new(&json!({})),
            at(10),
        );
        let stored = keys.get("sk:a", at(23)).unwrap();
        assert_eq!(stored.body().value(), json!({"id": "x"}));
        assert_eq!(stored.path(), "/v1/x");
        assert!(stored.same_parameters(&same_reordered));
        assert!(!stored.same_parameters(&other));
        assert!(keys.get("sk:a", at(24)).is_none());
        assert_eq!(keys.len(), 1);
        assert!(keys.get("sk:b", at(33)).is_some());
        // Stored again after its time was up: the new answer stays when the old expires.
        keys.insert(
            "sk:b".into(),
            "POST /v1/y".into(),
            sent,
            200,
            CompactJson::new(&json!({})),
            at(40),
        );
        assert_eq!(keys.get("sk:b", at(41)).unwrap().path(), "/v1/y");
        assert!(keys.get("sk:b", at(64)).is_none());
        assert_eq!(keys.len(), 0);
    }
}
