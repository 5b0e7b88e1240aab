//! Stripe's request parameters: `application/x-www-form-urlencoded` (or the query string of
//! a `GET`) with bracket notation — `metadata[plan]=gold`, `expand[]=customer`,
//! `card[number]=4242…`, `items[0][price]=…`.
//!
//! Parameters are *taken* one by one by the operation that reads them; whatever is left
//! over is a parameter Stripe does not know, refused as Stripe refuses it
//! (`Received unknown parameter: …`).

use std::collections::BTreeMap;

use super::error::ApiError;

/// One parameter's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FormValue {
    Str(String),
    /// `name[]=a&name[]=b`.
    List(Vec<FormValue>),
    /// `name[key]=…`, including numeric keys (`name[0]=…`).
    Map(BTreeMap<String, FormValue>),
}

/// Parameters not yet read, under a prefix (for the names in error messages).
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Form {
    prefix: String,
    fields: BTreeMap<String, FormValue>,
}

impl Form {
    /// Parses a form body or query string.
    pub fn parse(input: &[u8]) -> Result<Self, ApiError> {
        let mut form = Self::default();
        for (key, value) in url::form_urlencoded::parse(input) {
            let path = KeyPath::split(&key)?;
            insert(&mut form.fields, &key, path.segments(), value.into_owned())?;
        }
        Ok(form)
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    /// A top-level string parameter, left in place.
    pub fn peek_string(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(FormValue::Str(value)) => Some(value),
            _ => None,
        }
    }

    /// Drops parameters that are accepted and not used.
    pub fn discard(&mut self, keys: &[&str]) {
        for key in keys {
            self.fields.remove(*key);
        }
    }

    /// A string parameter.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.fields.remove(key) {
            None => Ok(None),
            Some(FormValue::Str(value)) => Ok(Some(value)),
            Some(_) => Err(ApiError::invalid(format!(
                "Invalid string: {} must be a string, not a hash or array",
                self.name(key)
            ))
            .with_code("parameter_invalid_string")
            .with_param(&self.name(key))),
        }
    }

    /// A required string parameter.
    pub fn required_string(&mut self, key: &str) -> Result<String, ApiError> {
        match self.string(key)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::missing(&self.name(key))),
        }
    }

    /// An integer parameter.
    pub fn integer(&mut self, key: &str) -> Result<Option<i64>, ApiError> {
        let name = self.name(key);
        let Some(raw) = self.string(key)? else {
            return Ok(None);
        };
        raw.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(format!("Invalid integer: {raw}"))
                .with_code("parameter_invalid_integer")
                .with_param(&name)
        })
    }

    /// A boolean parameter (`true` / `false`).
    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        let name = self.name(key);
        match self.string(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => {
                Err(ApiError::invalid(format!("Invalid boolean: {other}")).with_param(&name))
            }
        }
    }

    /// One of a fixed set of values.
    pub fn one_of(&mut self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        let name = self.name(key);
        match self.string(key)? {
            None => Ok(None),
            Some(value) if allowed.contains(&value.as_str()) => Ok(Some(value)),
            Some(value) => Err(ApiError::invalid(format!(
                "Invalid {name}: must be one of {}",
                allowed.join(", ")
            ))
            .with_code("parameter_invalid_string")
            .with_param(&name)
            .with_extra("value", serde_json::Value::String(value))),
        }
    }

    /// A timestamp filter: `created=1700000000` (exactly) or
    /// `created[gt|gte|lt|lte]=1700000000`.
    pub fn range(&mut self, key: &str) -> Result<Option<Range>, ApiError> {
        let name = self.name(key);
        match self.fields.remove(key) {
            None => Ok(None),
            Some(FormValue::Str(raw)) => {
                let exact = raw.parse::<i64>().map_err(|_| {
                    ApiError::invalid(format!("Invalid integer: {raw}"))
                        .with_code("parameter_invalid_integer")
                        .with_param(&name)
                })?;
                Ok(Some(Range {
                    gte: Some(exact),
                    lte: Some(exact),
                    ..Range::default()
                }))
            }
            Some(FormValue::Map(fields)) => {
                let mut bounds = Form {
                    prefix: name,
                    fields,
                };
                let range = Range {
                    gt: bounds.integer("gt")?,
                    gte: bounds.integer("gte")?,
                    lt: bounds.integer("lt")?,
                    lte: bounds.integer("lte")?,
                };
                bounds.finish()?;
                Ok(Some(range))
            }
            Some(FormValue::List(_)) => Err(ApiError::invalid(format!(
                "Invalid {name}: must be an integer or a hash of gt, gte, lt, lte"
            ))
            .with_param(&name)),
        }
    }

    /// A hash parameter (`card[number]=…`), or `None`. An empty string (`name=`) is an
    /// empty hash, which is how Stripe clients unset a hash.
    pub fn hash(&mut self, key: &str) -> Result<Option<Form>, ApiError> {
        let name = self.name(key);
        match self.fields.remove(key) {
            None => Ok(None),
            Some(FormValue::Map(fields)) => Ok(Some(Form {
                prefix: name,
                fields,
            })),
            Some(FormValue::Str(value)) if value.is_empty() => Ok(Some(Form {
                prefix: name,
                fields: BTreeMap::new(),
            })),
            Some(_) => Err(
                ApiError::invalid(format!("Invalid hash: {name} must be a hash"))
                    .with_code("parameter_invalid_hash")
                    .with_param(&name),
            ),
        }
    }

    /// A list of strings: `name[]=a&name[]=b` or `name[0]=a&name[1]=b`.
    pub fn string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let name = self.name(key);
        let invalid = || {
            ApiError::invalid(format!("Invalid array: {name} must be an array of strings"))
                .with_code("parameter_invalid_array")
                .with_param(&name)
        };
        let items = match self.fields.remove(key) {
            None => return Ok(None),
            Some(FormValue::List(items)) => items,
            Some(FormValue::Str(value)) if value.is_empty() => Vec::new(),
            Some(FormValue::Map(map)) => {
                let mut indexed = Vec::new();
                for (index, value) in map {
                    let index: usize = index.parse().map_err(|_| invalid())?;
                    indexed.push((index, value));
                }
                indexed.sort_by_key(|(index, _)| *index);
                indexed.into_iter().map(|(_, value)| value).collect()
            }
            Some(FormValue::Str(_)) => return Err(invalid()),
        };
        items
            .into_iter()
            .map(|item| match item {
                FormValue::Str(value) => Ok(value),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The remaining hash as string pairs (`metadata`); a nested value is refused.
    pub fn into_string_map(self) -> Result<BTreeMap<String, String>, ApiError> {
        let prefix = self.prefix;
        self.fields
            .into_iter()
            .map(|(key, value)| match value {
                FormValue::Str(value) => Ok((key, value)),
                _ => {
                    let name = format!("{prefix}[{key}]");
                    Err(
                        ApiError::invalid(format!("Invalid string: {name} must be a string"))
                            .with_code("parameter_invalid_string")
                            .with_param(&name),
                    )
                }
            })
            .collect()
    }

    /// Refuses whatever was not read.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.fields.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::unknown_parameter(&self.name(key))),
        }
    }
}

/// Bounds on an integer (a timestamp), each optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Range {
    pub fn contains(&self, value: i64) -> bool {
        self.gt.is_none_or(|bound| value > bound)
            && self.gte.is_none_or(|bound| value >= bound)
            && self.lt.is_none_or(|bound| value < bound)
            && self.lte.is_none_or(|bound| value <= bound)
    }
}

/// Stripe's parameters nest a few levels (`payment_method_data[card][number]`); deeper
/// names are refused rather than recursed into.
const MAX_DEPTH: usize = 8;

/// A parameter name split at its brackets (`metadata[plan]` → `metadata`, `plan`), the
/// segments borrowed from the name.
struct KeyPath<'k> {
    segments: [&'k str; MAX_DEPTH + 1],
    len: usize,
}

impl<'k> KeyPath<'k> {
    fn split(key: &'k str) -> Result<Self, ApiError> {
        let malformed = || ApiError::invalid(format!("Invalid parameter name: {key}"));
        let (head, mut rest) = match key.find('[') {
            Some(index) => (&key[..index], &key[index..]),
            None => (key, ""),
        };
        if head.is_empty() {
            return Err(malformed());
        }
        let mut path = Self {
            segments: [""; MAX_DEPTH + 1],
            len: 1,
        };
        path.segments[0] = head;
        while !rest.is_empty() {
            if path.len > MAX_DEPTH {
                return Err(ApiError::invalid(format!(
                    "Invalid parameter name: {key} (nested more than {MAX_DEPTH} levels deep)"
                )));
            }
            let Some(inner) = rest.strip_prefix('[') else {
                return Err(malformed());
            };
            let Some(close) = inner.find(']') else {
                return Err(malformed());
            };
            let segment = &inner[..close];
            if segment.contains('[') {
                return Err(malformed());
            }
            path.segments[path.len] = segment;
            path.len += 1;
            rest = &inner[close + 1..];
        }
        Ok(path)
    }

    fn segments(&self) -> &[&'k str] {
        &self.segments[..self.len]
    }
}

fn insert(
    fields: &mut BTreeMap<String, FormValue>,
    key: &str,
    path: &[&str],
    value: String,
) -> Result<(), ApiError> {
    let conflict = || {
        ApiError::invalid(format!(
            "Invalid parameter: {key} conflicts with another parameter of the same name"
        ))
    };
    let (first, rest) = path.split_first().ok_or_else(conflict)?;
    match rest.split_first() {
        None => {
            fields.insert((*first).to_owned(), FormValue::Str(value));
            Ok(())
        }
        Some((&"", _)) => {
            if rest.len() > 1 {
                // `a[][b]`: lists of hashes are not used by any operation here.
                return Err(ApiError::invalid(format!("Invalid parameter name: {key}")));
            }
            let entry = entry(fields, first, || FormValue::List(Vec::new()));
            match entry {
                FormValue::List(items) => {
                    items.push(FormValue::Str(value));
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }
        Some(_) => {
            let entry = entry(fields, first, || FormValue::Map(BTreeMap::new()));
            if matches!(entry, FormValue::Str(existing) if existing.is_empty()) {
                *entry = FormValue::Map(BTreeMap::new());
            }
            match entry {
                FormValue::Map(map) => insert(map, key, rest, value),
                _ => Err(conflict()),
            }
        }
    }
}

/// The value under `name`, made with `new` if there is none; the name is copied only then.
fn entry<'f>(
    fields: &'f mut BTreeMap<String, FormValue>,
    name: &str,
    new: impl FnOnce() -> FormValue,
) -> &'f mut FormValue {
    if !fields.contains_key(name) {
        fields.insert(name.to_owned(), new());
    }
    fields
        .get_mut(name)
        .expect("a value is under the name: it was there or was just put there")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_nest() {
        let mut form = Form::parse(
            b"amount=100&metadata[plan]=gold&expand[]=a&expand[]=b&card[number]=4242&items[1]=y&items[0]=x",
        )
        .expect("parses");
        assert_eq!(form.integer("amount").unwrap(), Some(100));
        let metadata = form
            .hash("metadata")
            .unwrap()
            .unwrap()
            .into_string_map()
            .unwrap();
        assert_eq!(metadata["plan"], "gold");
        assert_eq!(
            form.string_list("expand").unwrap().unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(
            form.string_list("items").unwrap().unwrap(),
            vec!["x".to_owned(), "y".to_owned()]
        );
        let mut card = form.hash("card").unwrap().unwrap();
        assert_eq!(card.string("number").unwrap().as_deref(), Some("4242"));
        card.finish().unwrap();
        form.finish().unwrap();
    }

    #[test]
    fn ranges_are_exact_or_bounded() {
        let mut form = Form::parse(b"a=5&b[gte]=2&b[lt]=4&c[foo]=1&d=x").unwrap();
        let exact = form.range("a").unwrap().unwrap();
        assert!(exact.contains(5) && !exact.contains(4) && !exact.contains(6));
        let bounded = form.range("b").unwrap().unwrap();
        assert!(!bounded.contains(1) && bounded.contains(2) && bounded.contains(3));
        assert!(!bounded.contains(4));
        assert_eq!(
            form.range("c").unwrap_err().message,
            "Received unknown parameter: c[foo]"
        );
        assert_eq!(form.range("d").unwrap_err().param.as_deref(), Some("d"));
        assert_eq!(form.range("missing").unwrap(), None);
    }

    #[test]
    fn leftovers_and_malformed_names_are_refused() {
        let mut form = Form::parse(b"card[foo]=1").unwrap();
        let card = form.hash("card").unwrap().unwrap();
        assert_eq!(
            card.finish().unwrap_err().message,
            "Received unknown parameter: card[foo]"
        );
        assert!(Form::parse(b"a[b=1").is_err());
        assert!(Form::parse(b"a=1&a[b]=2").is_err());
        assert!(Form::parse(b"[x]=1").is_err());
        let deep = format!("a{}=1", "[x]".repeat(100_000));
        assert!(Form::parse(deep.as_bytes()).is_err());
        let deepest = format!("a{}=1", "[x]".repeat(MAX_DEPTH));
        let mut nested = Form::parse(deepest.as_bytes())
            .expect("nested as deep as allowed")
            .hash("a")
            .unwrap()
            .expect("the top level");
        for _ in 0..MAX_DEPTH - 1 {
            nested = nested.hash("x").unwrap().expect("a level");
        }
        assert_eq!(nested.string("x").unwrap().as_deref(), Some("1"));
        let too_deep = format!("a{}=1", "[x]".repeat(MAX_DEPTH + 1));
        assert!(
            Form::parse(too_deep.as_bytes())
                .unwrap_err()
                .message
                .contains("nested more than 8 levels deep")
        );
        assert!(
            Form::parse(b"amount=abc")
                .unwrap()
                .integer("amount")
                .is_err()
        );
    }
}
