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
