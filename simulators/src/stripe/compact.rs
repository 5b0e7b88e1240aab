//! JSON kept as its compact text: event snapshots and the API's answers are serialised
//! once, straight from the object, and then stored, replayed and sent as they are.

use std::sync::Arc;

use poem::IntoResponse;
use poem::http::header;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};

/// A JSON value as its compact text, a fraction of the memory of a [`Value`]; serialized
/// as the text it holds, without parsing it again. Clones share the text.
#[derive(Debug, Clone)]
pub struct CompactJson(Arc<RawValue>);

impl CompactJson {
    /// The object's JSON text, written straight from the object instead of through a
    /// [`Value`] tree first; `null` if the object cannot be written as JSON.
    pub fn new<T: Serialize + ?Sized>(object: &T) -> Self {
        Self::try_new(object).unwrap_or_else(|_| Self(Arc::from(RawValue::NULL.to_owned())))
    }

    pub fn try_new<T: Serialize + ?Sized>(object: &T) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::from(to_raw_value(object)?)))
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl Serialize for CompactJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// As a response body, it is the JSON payload it holds: any JSON value, to the API document.
impl Payload for CompactJson {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        Value::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Value::register(registry);
    }
}

impl IntoResponse for CompactJson {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .header(header::CONTENT_TYPE, Self::CONTENT_TYPE)
            .body(self.0.get().as_bytes().to_vec())
    }
}

/// An object with the snapshot an event just recorded of it, answered as that snapshot so
/// that the object is not written out a second time for the response.
#[derive(Debug)]
pub struct Recorded<T> {
    object: T,
    snapshot: CompactJson,
}

impl<T: Serialize> Recorded<T> {
    /// The object and its snapshot, to be recorded with an event.
    pub fn new(object: T) -> Self {
        let snapshot = CompactJson::new(&object);
        Self { object, snapshot }
    }

    pub fn snapshot(&self) -> CompactJson {
        self.snapshot.clone()
    }
}

impl<T> std::ops::Deref for Recorded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.object
    }
}

impl<T> Serialize for Recorded<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.snapshot.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_recorded_object_is_answered_as_the_snapshot_taken_of_it() {
        let object = json!({"id": "pi_1", "status": "succeeded", "metadata": {"a": "1"}});
        let recorded = Recorded::new(object.clone());
        assert_eq!(recorded.snapshot().value(), object);
        assert_eq!(
            serde_json::to_string(&recorded).unwrap(),
            serde_json::to_string(&object).unwrap()
        );
        assert_eq!(recorded["status"], "succeeded");
    }
}
