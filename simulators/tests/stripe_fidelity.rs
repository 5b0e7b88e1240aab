//! The Stripe simulator's answers against Stripe's own published OpenAPI schemas.
//!
//! `tests/fixtures/stripe-openapi-subset.json` is the part of Stripe's OpenAPI document
//! (github.com/stripe/openapi; the commit, path and API version are in the file) that
//! covers the objects the simulator returns, extracted by `cargo xtask stripe-schemas`.
//! Each test drives the simulator over HTTP the way a merchant's server does and checks
//! every answer against the schema of the operation that produced it (the error object for
//! 4xx answers).
//!
//! OpenAPI 3.0 is turned into JSON Schema 2020-12 here:
//! - `$ref: #/components/schemas/X` becomes `#/$defs/X`; `description`, `format` and the
//!   `x-*` vendor keys are dropped (`format: unix-time` is only an integer);
//! - `nullable: true` admits `null` (added to `type` and to `enum`);
//! - strictness: an object schema that lists `properties` and says nothing about
//!   `additionalProperties` gets `additionalProperties: false`, so a field the simulator sends
//!   and Stripe's schema does not have is reported. Free-form maps (`metadata`, which declare
//!   `additionalProperties` and no `properties`) and objects the subset cut (`{"type":
//!   "object"}`) stay open;
//! - an `anyOf` whose alternatives differ by JSON type (an id string or an expanded object,
//!   an object or `null`) becomes `if`/`then`/`else` on the type, so a problem inside the
//!   object is reported where it is, not as "not valid under any of the schemas".
//!
//! The newest spec this repository could take offline describes an older API version than
//! the simulator's objects (see the file's `info.version`). Stripe's fixtures
//! (`openapi/fixtures3.json`: a sample of each object with every field Stripe always sends,
//! generated alongside the spec) from a newer commit fill that gap, as recorded under
//! `x-stripeFixtures` in the subset:
//! - `newer_properties`: fields Stripe's newer objects have that the spec does not declare
//!   are admitted, of the JSON type of Stripe's sample value or `null` (anything when the
//!   sample is `null`; what is inside an object is not known);
//! - `always_present`: a field Stripe's newer samples always have at a place (any depth)
//!   that the simulator's object lacks there is a finding.
//!
//! A finding names the object, the operation, the JSON pointer in the answer and the
//! problem. The tests fail on findings: each is a difference from Stripe.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use boxoffice_simulators::clock::Now;
use boxoffice_simulators::stripe::{StripeConfig, StripeSimulator};
use chrono::{DateTime, Utc};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Map, Value, json};

const SECRET: &str = "sk_test_51BoxOfficeFidelitySecretKey00000";
const PUBLISHABLE: &str = "pk_test_51BoxOfficeFidelityPublishable00";
const START: &str = "2030-01-01T00:00:00Z";
const SUBSET: &str = include_str!("fixtures/stripe-openapi-subset.json");

// --- Stripe's schemas as JSON Schema --------------------------------------------------

/// The subset, converted, and a validator per schema compiled on first use.
struct Schemas {
    /// `components.schemas`, converted.
    defs: Map<String, Value>,
    /// `"GET /v1/customers"` → the converted schema of its 200 answer.
    operations: Map<String, Value>,
    /// The spec's `info.version`, for messages.
    version: String,
    /// Schema location (`name` or `name#/pointer`) → the fields Stripe's newer fixtures
    /// always have there.
    always_present: HashMap<String, Vec<String>>,
    /// `components.schemas` as the subset has them, with the newer fields admitted: for
    /// walking an answer alongside its schema.
    raw: Map<String, Value>,
    /// The commit of stripe/openapi the fixtures come from.
    fixtures_commit: String,
    /// List operation → the object its `data` holds.
    list_items: HashMap<String, String>,
    compiled: Mutex<HashMap<String, Arc<Validator>>>,
}

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    let subset: Value = serde_json::from_str(SUBSET).expect("the subset is JSON");
    let mut raw = subset["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .clone();
    let fixtures = &subset["x-stripeFixtures"];
    admit_newer_properties(&mut raw, &fixtures["newer_properties"]);
    let always_present = fixtures["always_present"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, keys)| {
            let keys = keys
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            (name.clone(), keys)
        })
        .collect();
    let raw_operations = subset["operations"].as_object().expect("operations");
    let list_items = raw_operations
        .iter()
        .filter_map(|(operation, schema)| {
            let item = schema["properties"]["data"]["items"]["$ref"].as_str()?;
            let name = item.strip_prefix("#/components/schemas/")?;
            Some((operation.clone(), name.to_owned()))
        })
        .collect();
    let converter = Converter { raw: &raw };
    let defs = raw
        .iter()
        .map(|(name, schema)| (name.clone(), converter.convert(schema)))
        .collect();
    let operations = raw_operations
        .iter()
        .map(|(name, schema)| (name.clone(), converter.convert(schema)))
        .collect();
    Schemas {
        defs,
        operations,
        version: subset["info"]["version"].as_str().unwrap_or("?").to_owned(),
        always_present,
        fixtures_commit: fixtures["source"]["commit"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        list_items,
        raw: raw.clone(),
        compiled: Mutex::new(HashMap::new()),
    }
});

/// Declares the fields Stripe's newer fixtures show at each schema location (`name` or
/// `name#/json/pointer`): of the JSON type of Stripe's sample value or `null`, or anything
/// when the sample was `null`.
fn admit_newer_properties(raw: &mut Map<String, Value>, newer: &Value) {
    for (location, names) in newer.as_object().into_iter().flatten() {
        let (name, pointer) = location.split_once('#').unwrap_or((location, ""));
        let node = raw
            .get_mut(name)
            .and_then(|schema| schema.pointer_mut(pointer))
            .unwrap_or_else(|| panic!("x-stripeFixtures names {location}, not in the subset"));
        let properties = node["properties"]
            .as_object_mut()
            .unwrap_or_else(|| panic!("{location} has no properties"));
        for (field, sample_type) in names.as_object().into_iter().flatten() {
            assert!(
                !properties.contains_key(field),
                "{location} already declares {field}"
            );
            let schema = match sample_type.as_str() {
                Some(kind) => json!({"type": kind, "nullable": true}),
                None => json!({}),
            };
            properties.insert(field.clone(), schema);
        }
    }
}

struct Converter<'a> {
    raw: &'a Map<String, Value>,
}

impl Converter<'_> {
    fn convert(&self, node: &Value) -> Value {
        let Some(object) = node.as_object() else {
            return node.clone();
        };
        let nullable = object.get("nullable") == Some(&Value::Bool(true));
        let mut out = Map::new();
        for (key, value) in object {
            match key.as_str() {
                "description" | "format" | "nullable" | "title" => {}
                key if key.starts_with("x-") => {}
                "$ref" => {
                    let name = value
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        .expect("references point into components.schemas");
                    out.insert(key.to_owned(), json!(format!("#/$defs/{name}")));
                }
                "properties" => {
                    let properties = value
                        .as_object()
                        .expect("properties is an object")
                        .iter()
                        .map(|(name, schema)| (name.clone(), self.convert(schema)))
                        .collect();
                    out.insert(key.to_owned(), Value::Object(properties));
                }
                "items" | "additionalProperties" | "not" => {
                    out.insert(key.to_owned(), self.convert(value));
                }
                "anyOf" | "oneOf" | "allOf" => {
                    let alternatives = value
                        .as_array()
                        .expect("a list of schemas")
                        .iter()
                        .map(|schema| self.convert(schema))
                        .collect();
                    out.insert(key.to_owned(), Value::Array(alternatives));
                }
                _ => {
                    out.insert(key.to_owned(), value.clone());
                }
            }
        }
        if out.contains_key("properties") && !out.contains_key("additionalProperties") {
            out.insert("additionalProperties".into(), Value::Bool(false));
        }
        if let Some(Value::Array(alternatives)) = out.remove("anyOf") {
            let mut alternatives = alternatives;
            if nullable {
                alternatives.push(json!({"type": "null"}));
            }
            let dispatched = self.dispatch(alternatives);
            return if out.is_empty() {
                dispatched
            } else {
                out.insert("allOf".into(), json!([dispatched]));
                Value::Object(out)
            };
        }
        if nullable {
            match out.get_mut("type") {
                Some(Value::String(single)) => {
                    let single = single.clone();
                    out.insert("type".into(), json!([single, "null"]));
                }
                _ => {
                    return json!({"if": {"type": "null"}, "else": Value::Object(out)});
                }
            }
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                values.push(Value::Null);
            }
        }
        Value::Object(out)
    }

    /// The JSON type a converted alternative accepts, when it names exactly one.
    fn json_type(&self, schema: &Value) -> Option<String> {
        if let Some(name) = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            return self.raw.get(name)?["type"].as_str().map(str::to_owned);
        }
        schema["type"].as_str().map(str::to_owned)
    }

    /// One alternative per JSON type becomes an `if`/`then`/`else` chain on the type, so that
    /// errors inside the matching alternative are reported as they are; alternatives sharing
    /// a type stay an `anyOf` among themselves.
    fn dispatch(&self, alternatives: Vec<Value>) -> Value {
        if alternatives.len() == 1 {
            return alternatives.into_iter().next().expect("one");
        }
        let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
        for alternative in alternatives {
            let Some(kind) = self.json_type(&alternative) else {
                // Something without a single type: keep Stripe's anyOf as it is.
                let all: Vec<Value> = groups
                    .into_iter()
                    .flat_map(|(_, group)| group)
                    .chain(std::iter::once(alternative))
                    .collect();
                return json!({"anyOf": all});
            };
            match groups.iter_mut().find(|(existing, _)| *existing == kind) {
                Some((_, group)) => group.push(alternative),
                None => groups.push((kind, vec![alternative])),
            }
        }
        let types: Vec<String> = groups.iter().map(|(kind, _)| kind.clone()).collect();
        let mut chain = json!({"type": types});
        for (kind, group) in groups.into_iter().rev() {
            let then = if group.len() == 1 {
                group.into_iter().next().expect("one")
            } else {
                json!({"anyOf": group})
            };
            chain = json!({"if": {"type": kind}, "then": then, "else": chain});
        }
        chain
    }
}

impl Schemas {
    fn validator(&self, key: &str, schema: &Value) -> Arc<Validator> {
        let mut compiled = self.compiled.lock().expect("validators");
        compiled
            .entry(key.to_owned())
            .or_insert_with(|| {
                let mut document = schema.as_object().cloned().unwrap_or_default();
                document.insert(
                    "$schema".into(),
                    json!("https://json-schema.org/draft/2020-12/schema"),
                );
                document.insert("$defs".into(), Value::Object(self.defs.clone()));
                let document = Value::Object(document);
                Arc::new(
                    jsonschema::draft202012::new(&document)
                        .unwrap_or_else(|error| panic!("the schema for {key} compiles: {error}")),
                )
            })
            .clone()
    }

    /// The problems with `instance` as the schema `name` of `components.schemas`.
    fn check_object(&self, name: &str, instance: &Value) -> Vec<String> {
        assert!(
            self.defs.contains_key(name),
            "no schema {name} in the subset"
        );
        let schema = json!({"$ref": format!("#/$defs/{name}")});
        let validator = self.validator(&format!("#{name}"), &schema);
        problems(&validator, instance)
    }

    /// The fields Stripe always sends (per its newer fixtures) that `instance`, a `name`,
    /// lacks, at any depth, as problems at their pointers under `pointer`.
    fn check_present(&self, name: &str, pointer: &str, instance: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        self.present(String::new(), &reference, instance, pointer, &mut out, 0);
        out
    }

    fn present(
        &self,
        location: String,
        schema: &Value,
        instance: &Value,
        pointer: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        let Some((location, schema)) = object_schema(&self.raw, location, schema) else {
            return;
        };
        match instance {
            Value::Object(fields) => {
                let name = location.trim_end_matches('#');
                for key in self.always_present.get(name).into_iter().flatten() {
                    if !fields.contains_key(key) {
                        out.push(format!(
                            "{}: \"{key}\" is missing; Stripe always sends it in a {name} \
                             (openapi/fixtures3.json at {})",
                            if pointer.is_empty() { "/" } else { pointer },
                            self.fixtures_commit
                        ));
                    }
                }
                let Some(properties) = schema["properties"].as_object() else {
                    return;
                };
                for (key, value) in fields {
                    if let Some(property) = properties.get(key) {
                        self.present(
                            format!("{location}/properties/{}", escape(key)),
                            property,
                            value,
                            &format!("{pointer}/{}", escape(key)),
                            out,
                            depth + 1,
                        );
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.present(
                            format!("{location}/items"),
                            item_schema,
                            item,
                            &format!("{pointer}/{index}"),
                            out,
                            depth + 1,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// The problems with `instance` as the answer of `operation` (e.g. `GET /v1/customers`).
    /// Where Stripe's answer is one of several objects (`customer` or `deleted_customer`),
    /// `branch` says which one the simulator should have sent.
    fn check_operation(
        &self,
        operation: &str,
        branch: Option<&str>,
        instance: &Value,
    ) -> Vec<String> {
        let schema = self
            .operations
            .get(operation)
            .unwrap_or_else(|| panic!("no operation {operation} in the subset"));
        match branch {
            None => {
                let validator = self.validator(operation, schema);
                problems(&validator, instance)
            }
            Some(name) => {
                let text = schema.to_string();
                assert!(
                    text.contains(&format!("\"#/$defs/{name}\"")),
                    "{operation} does not answer with a {name} in Stripe's spec"
                );
                self.check_object(name, instance)
            }
        }
    }
}

/// The one object (or array) schema `schema` stands for, with its location, as
/// `cargo xtask stripe-schemas` names locations: through a `$ref`, or the single such
/// alternative of an `anyOf`; `None` for none or several (a polymorphic field).
fn object_schema<'a>(
    raw: &'a Map<String, Value>,
    location: String,
    schema: &'a Value,
) -> Option<(String, &'a Value)> {
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return object_schema(raw, format!("{name}#"), raw.get(name)?);
    }
    if schema.get("properties").is_some() || schema.get("items").is_some() {
        return Some((location, schema));
    }
    let alternatives = schema["anyOf"].as_array()?;
    let mut found = alternatives
        .iter()
        .enumerate()
        .filter_map(|(index, alternative)| {
            object_schema(raw, format!("{location}/anyOf/{index}"), alternative)
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn problems(validator: &Validator, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for error in validator.iter_errors(instance) {
        describe(&error, "", &mut out);
    }
    out
}

/// `"<pointer>: <problem>"`; for an `anyOf` nothing matched, what each alternative said.
fn describe(error: &ValidationError<'_>, indent: &str, out: &mut Vec<String>) {
    let pointer = error.instance_path().to_string();
    let pointer = if pointer.is_empty() {
        "/".to_owned()
    } else {
        pointer
    };
    match error.kind() {
        ValidationErrorKind::AnyOf { context } => {
            out.push(format!(
                "{indent}{pointer}: matches none of Stripe's alternatives (schema {}):",
                error.schema_path()
            ));
            for (index, branch) in context.iter().enumerate() {
                out.push(format!("{indent}  alternative {index}:"));
                for inner in branch {
                    describe(inner, &format!("{indent}    "), out);
                }
            }
        }
        _ => out.push(format!("{indent}{pointer}: {}", short(&error.to_string()))),
    }
}

/// Error messages quote the whole offending value; a whole object is not useful there.
fn short(message: &str) -> String {
    const LIMIT: usize = 300;
    if message.len() <= LIMIT {
        return message.to_owned();
    }
    let mut end = LIMIT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// What the checks found, across one test.
#[derive(Default)]
struct Findings {
    lines: Vec<String>,
    checked: usize,
}

impl Findings {
    fn record(&mut self, what: &str, problems: Vec<String>) {
        self.checked += 1;
        if !problems.is_empty() {
            self.lines.push(format!("{what}:"));
            self.lines
                .extend(problems.into_iter().map(|problem| format!("  {problem}")));
        }
    }

    /// An answer of `operation` that should be the object `object`.
    fn answer(&mut self, object: &str, operation: &str, reply: &Reply) {
        assert_eq!(
            reply.status, 200,
            "{operation}: expected success, got {} {}",
            reply.status, reply.body
        );
        let schema = SCHEMAS
            .operations
            .get(operation)
            .unwrap_or_else(|| panic!("no operation {operation} in the subset"));
        let branch = match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                assert_eq!(
                    reference,
                    format!("#/$defs/{object}"),
                    "{operation} answers with another object in Stripe's spec"
                );
                None
            }
            None => Some(object),
        };
        let mut problems = SCHEMAS.check_operation(operation, branch, &reply.body);
        problems.extend(SCHEMAS.check_present(object, "", &reply.body));
        self.record(&format!("{object} from {operation}"), problems);
    }

    /// A list answer of `operation`.
    fn list(&mut self, operation: &str, reply: &Reply) {
        assert_eq!(
            reply.status, 200,
            "{operation}: expected success, got {} {}",
            reply.status, reply.body
        );
        let mut problems = SCHEMAS.check_operation(operation, None, &reply.body);
        let item = SCHEMAS
            .list_items
            .get(operation)
            .unwrap_or_else(|| panic!("{operation} is not a list in Stripe's spec"));
        for (index, value) in reply.body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            problems.extend(SCHEMAS.check_present(item, &format!("/data/{index}"), value));
        }
        self.record(&format!("list of {item} from {operation}"), problems);
    }

    /// An error answer: Stripe's error object, with the status Stripe uses.
    fn error(&mut self, operation: &str, status: u16, reply: &Reply) {
        assert_eq!(
            reply.status, status,
            "{operation}: expected {status}, got {} {}",
            reply.status, reply.body
        );
        let mut problems = SCHEMAS.check_object("error", &reply.body);
        problems.extend(SCHEMAS.check_present("error", "", &reply.body));
        self.record(&format!("error ({status}) from {operation}"), problems);
    }

    /// A value that should be the object `name`, found inside another answer.
    fn object(&mut self, name: &str, context: &str, value: &Value) {
        let mut problems = SCHEMAS.check_object(name, value);
        problems.extend(SCHEMAS.check_present(name, "", value));
        self.record(&format!("{name} in {context}"), problems);
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(self.checked > 0, "nothing was checked");
        if self.lines.is_empty() {
            return;
        }
        // The same problem in many answers (or list items) is listed once first, with the
        // number of times it was seen; every occurrence follows.
        let mut distinct: Vec<(String, usize)> = Vec::new();
        for line in self.lines.iter().filter(|line| line.starts_with(' ')) {
            let normalized = line
                .trim()
                .split('/')
                .map(|segment| {
                    if !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit()) {
                        "*"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            match distinct.iter_mut().find(|(seen, _)| *seen == normalized) {
                Some((_, count)) => *count += 1,
                None => distinct.push((normalized, 1)),
            }
        }
        panic!(
            "the simulator differs from Stripe (OpenAPI schemas of API version {}, fixtures at {}) \
             in {} answer(s); {} distinct problem(s):\n{}\n\nevery answer:\n{}",
            SCHEMAS.version,
            SCHEMAS.fixtures_commit,
            self.lines
                .iter()
                .filter(|line| !line.starts_with(' '))
                .count(),
            distinct.len(),
            distinct
                .iter()
                .map(|(problem, count)| format!("  {count:>3} × {problem}"))
                .collect::<Vec<_>>()
                .join("\n"),
            self.lines.join("\n")
        );
    }
}

// --- The simulator over HTTP ----------------------------------------------------------

struct Harness {
    http: reqwest::Client,
    base: String,
}

struct Reply {
    status: u16,
    body: Value,
}

async fn start() -> Harness {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let base = format!("http://{address}");
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(START)
        .expect("time")
        .with_timezone(&Utc);
    let now: Now = Arc::new(move || start);
    let simulator = StripeSimulator::new(
        StripeConfig {
            public_base_url: base.clone(),
            secret_key: SECRET.into(),
            publishable_key: PUBLISHABLE.into(),
            local_webhooks: None,
        },
        now,
    )
    .expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sim", control)
        .nest("/", simulator.endpoint());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    Harness {
        http: reqwest::Client::new(),
        base,
    }
}

impl Harness {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
        Reply { status, body }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(SECRET)
                .form(form),
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(SECRET),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(
            self.http
                .delete(format!("{}{path}", self.base))
                .bearer_auth(SECRET),
        )
        .await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/stripe{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn customer(&self, found: &mut Findings) -> String {
        let reply = self
            .post(
                "/v1/customers",
                &[("email", "jane@example.com"), ("name", "Jane Doe")],
            )
            .await;
        found.answer("customer", "POST /v1/customers", &reply);
        id(&reply)
    }
}

fn id(reply: &Reply) -> String {
    reply.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", reply.body))
        .to_owned()
}

// --- The checks -------------------------------------------------------------------------

#[test]
fn the_subset_names_its_source_and_converts() {
    let subset: Value = serde_json::from_str(SUBSET).expect("JSON");
    let source = &subset["x-stripeSubset"]["source"];
    assert_eq!(source["repository"], "https://github.com/stripe/openapi");
    assert_eq!(source["commit"].as_str().map(str::len), Some(40));
    assert!(subset["info"]["version"].is_string());
    // Strictness is in place: unknown fields, missing required fields, wrong types and
    // values outside an enum are all reported, with their pointer.
    let mut customer = json!({
        "id": "cus_1", "object": "customer", "created": 1, "livemode": false,
        "email": null, "metadata": {"any": "thing"}, "invented": true
    });
    let problems = SCHEMAS.check_object("customer", &customer);
    assert!(
        problems
            .iter()
            .any(|problem| problem.starts_with("/: ") && problem.contains("invented")),
        "{problems:?}"
    );
    customer["object"] = json!("charge");
    customer["created"] = json!("yesterday");
    let problems = SCHEMAS.check_object("customer", &customer).join("\n");
    assert!(problems.contains("/object: "), "{problems}");
    assert!(problems.contains("/created: "), "{problems}");
    let intent = json!({"id": "pi_1", "object": "payment_intent", "last_payment_error": {"type": "card_error", "extra": 1}});
    let problems = SCHEMAS.check_object("payment_intent", &intent).join("\n");
    assert!(problems.contains("/last_payment_error: "), "{problems}");
    assert!(problems.contains("'extra' was unexpected"), "{problems}");
    assert!(
        problems.contains("\"amount\" is a required property"),
        "{problems}"
    );
}

#[tokio::test]
async fn customers() {
    let h = start().await;
    let mut found = Findings::default();
    let created = h
        .post(
            "/v1/customers",
            &[
                ("email", "jane@example.com"),
                ("name", "Jane Doe"),
                ("metadata[plan]", "gold"),
            ],
        )
        .await;
    found.answer("customer", "POST /v1/customers", &created);
    let customer = id(&created);
    let read = h.get(&format!("/v1/customers/{customer}")).await;
    found.answer("customer", "GET /v1/customers/{customer}", &read);
    let updated = h
        .post(
            &format!("/v1/customers/{customer}"),
            &[("email", "jane.doe@example.com"), ("metadata[tier]", "2")],
        )
        .await;
    found.answer("customer", "POST /v1/customers/{customer}", &updated);
    h.customer(&mut found).await;
    let page = h.get("/v1/customers?limit=2").await;
    found.list("GET /v1/customers", &page);
    let missing = h.get("/v1/customers/cus_missing").await;
    found.error("GET /v1/customers/{customer}", 404, &missing);
    let unknown = h.post("/v1/customers", &[("unknown", "1")]).await;
    found.error("POST /v1/customers", 400, &unknown);
    let no_key = h.send(h.http.get(format!("{}/v1/customers", h.base))).await;
    found.error("GET /v1/customers", 401, &no_key);
    for (email, status) in [("once@example.com", 200), ("twice@example.com", 400)] {
        let reply = h
            .send(
                h.http
                    .post(format!("{}/v1/customers", h.base))
                    .bearer_auth(SECRET)
                    .header("Idempotency-Key", "fidelity-1")
                    .form(&[("email", email)]),
            )
            .await;
        if status == 200 {
            found.answer("customer", "POST /v1/customers", &reply);
        } else {
            assert_eq!(reply.body["error"]["type"], "idempotency_error");
            found.error("POST /v1/customers", status, &reply);
        }
    }
    found.assert_none();
}

#[tokio::test]
async fn payment_methods() {
    let h = start().await;
    let mut found = Findings::default();
    let customer = h.customer(&mut found).await;
    let created = h
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    found.answer("payment_method", "POST /v1/payment_methods", &created);
    let pm = id(&created);
    let token = h.get("/v1/payment_methods/pm_card_visa").await;
    found.answer(
        "payment_method",
        "GET /v1/payment_methods/{payment_method}",
        &token,
    );
    let attached = h
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &[("customer", &customer)],
        )
        .await;
    found.answer(
        "payment_method",
        "POST /v1/payment_methods/{payment_method}/attach",
        &attached,
    );
    let updated = h
        .post(
            &format!("/v1/payment_methods/{pm}"),
            &[("metadata[label]", "main")],
        )
        .await;
    found.answer(
        "payment_method",
        "POST /v1/payment_methods/{payment_method}",
        &updated,
    );
    let default = h
        .post(
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", &pm)],
        )
        .await;
    found.answer("customer", "POST /v1/customers/{customer}", &default);
    let expanded = h
        .get(&format!(
            "/v1/customers/{customer}?expand[]=invoice_settings.default_payment_method"
        ))
        .await;
    assert!(expanded.body["invoice_settings"]["default_payment_method"].is_object());
    found.answer("customer", "GET /v1/customers/{customer}", &expanded);
    let listed = h
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await;
    found.list("GET /v1/customers/{customer}/payment_methods", &listed);
    let by_type = h
        .get(&format!(
            "/v1/payment_methods?customer={customer}&type=card"
        ))
        .await;
    found.list("GET /v1/payment_methods", &by_type);
    let declined = h
        .post(
            "/v1/payment_methods/pm_card_chargeDeclined/attach",
            &[("customer", &customer)],
        )
        .await;
    found.error(
        "POST /v1/payment_methods/{payment_method}/attach",
        402,
        &declined,
    );
    let detached = h
        .post(&format!("/v1/payment_methods/{pm}/detach"), &[])
        .await;
    found.answer(
        "payment_method",
        "POST /v1/payment_methods/{payment_method}/detach",
        &detached,
    );
    found.assert_none();
}

#[tokio::test]
async fn a_payment_intent_is_created_updated_confirmed_and_listed() {
    let h = start().await;
    let mut found = Findings::default();
    let customer = h.customer(&mut found).await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1999"),
                ("currency", "nok"),
                ("customer", &customer),
                ("setup_future_usage", "off_session"),
                ("payment_method_types[]", "card"),
                ("metadata[order]", "o-1"),
            ],
        )
        .await;
    found.answer("payment_intent", "POST /v1/payment_intents", &created);
    let intent = id(&created);
    let updated = h
        .post(
            &format!("/v1/payment_intents/{intent}"),
            &[("amount", "2999")],
        )
        .await;
    found.answer(
        "payment_intent",
        "POST /v1/payment_intents/{intent}",
        &updated,
    );
    let confirmed = h
        .post(
            &format!("/v1/payment_intents/{intent}/confirm"),
            &[
                ("payment_method", "pm_card_visa"),
                ("expand[]", "latest_charge"),
            ],
        )
        .await;
    assert_eq!(confirmed.body["status"], "succeeded");
    assert!(confirmed.body["latest_charge"].is_object());
    found.answer(
        "payment_intent",
        "POST /v1/payment_intents/{intent}/confirm",
        &confirmed,
    );
    let read = h.get(&format!("/v1/payment_intents/{intent}")).await;
    found.answer("payment_intent", "GET /v1/payment_intents/{intent}", &read);
    let listed = h
        .get(&format!("/v1/payment_intents?customer={customer}"))
        .await;
    found.list("GET /v1/payment_intents", &listed);
    let too_late = h
        .post(
            &format!("/v1/payment_intents/{intent}"),
            &[("amount", "100")],
        )
        .await;
    found.error("POST /v1/payment_intents/{intent}", 400, &too_late);

    // Off-session with the saved card, created and confirmed at once.
    let pm = confirmed.body["payment_method"]
        .as_str()
        .expect("payment_method")
        .to_owned();
    let renewal = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "2999"),
                ("currency", "nok"),
                ("customer", &customer),
                ("payment_method", &pm),
                ("off_session", "true"),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(renewal.body["status"], "succeeded");
    found.answer("payment_intent", "POST /v1/payment_intents", &renewal);

    let to_cancel = h
        .post(
            "/v1/payment_intents",
            &[("amount", "500"), ("currency", "usd")],
        )
        .await;
    found.answer("payment_intent", "POST /v1/payment_intents", &to_cancel);
    let canceled = h
        .post(
            &format!("/v1/payment_intents/{}/cancel", id(&to_cancel)),
            &[("cancellation_reason", "abandoned")],
        )
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    found.answer(
        "payment_intent",
        "POST /v1/payment_intents/{intent}/cancel",
        &canceled,
    );
    found.assert_none();
}

#[tokio::test]
async fn declined_payments() {
    let h = start().await;
    let mut found = Findings::default();
    let customer = h.customer(&mut found).await;
    for card in [
        "pm_card_chargeDeclined",
        "pm_card_chargeDeclinedInsufficientFunds",
        "pm_card_chargeDeclinedExpiredCard",
    ] {
        let declined = h
            .post(
                "/v1/payment_intents",
                &[
                    ("amount", "1000"),
                    ("currency", "usd"),
                    ("customer", &customer),
                    ("payment_method", card),
                    ("confirm", "true"),
                ],
            )
            .await;
        found.error("POST /v1/payment_intents", 402, &declined);
        let intent = &declined.body["error"]["payment_intent"];
        assert!(intent.is_object(), "{card}: the error carries the intent");
        assert!(intent["last_payment_error"].is_object());
        let read = h
            .get(&format!(
                "/v1/payment_intents/{}",
                intent["id"].as_str().expect("id")
            ))
            .await;
        assert!(read.body["last_payment_error"].is_object());
        found.answer("payment_intent", "GET /v1/payment_intents/{intent}", &read);
        found.object(
            "api_errors",
            &format!("last_payment_error of a {card} intent"),
            &read.body["last_payment_error"],
        );
        if let Some(charge) = declined.body["error"]["charge"].as_str() {
            let failed = h.get(&format!("/v1/charges/{charge}")).await;
            assert_eq!(failed.body["status"], "failed");
            found.answer("charge", "GET /v1/charges/{charge}", &failed);
        }
    }
    // A declined confirmation of an existing intent.
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "700"),
                ("currency", "eur"),
                ("customer", &customer),
            ],
        )
        .await;
    let confirm = h
        .post(
            &format!("/v1/payment_intents/{}/confirm", id(&created)),
            &[("payment_method", "pm_card_chargeDeclined")],
        )
        .await;
    found.error("POST /v1/payment_intents/{intent}/confirm", 402, &confirm);
    found.assert_none();
}

#[tokio::test]
async fn payments_that_need_the_customer() {
    let h = start().await;
    let mut found = Findings::default();
    let customer = h.customer(&mut found).await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "eur"),
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(created.body["status"], "requires_action");
    found.answer("payment_intent", "POST /v1/payment_intents", &created);
    let intent = id(&created);
    let done = h
        .control(&format!("/intents/{intent}/confirm"), json!({}))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let read = h.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(read.body["status"], "succeeded");
    found.answer("payment_intent", "GET /v1/payment_intents/{intent}", &read);
    let off_session = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "eur"),
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
                ("off_session", "true"),
            ],
        )
        .await;
    found.error("POST /v1/payment_intents", 402, &off_session);
    found.assert_none();
}

#[tokio::test]
async fn setup_intents() {
    let h = start().await;
    let mut found = Findings::default();
    let customer = h.customer(&mut found).await;
    let created = h
        .post(
            "/v1/setup_intents",
            &[("customer", &customer), ("usage", "off_session")],
        )
        .await;
    found.answer("setup_intent", "POST /v1/setup_intents", &created);
    let intent = id(&created);
    let declined = h
        .post(
            &format!("/v1/setup_intents/{intent}/confirm"),
            &[("payment_method", "pm_card_chargeDeclined")],
        )
        .await;
    found.error("POST /v1/setup_intents/{intent}/confirm", 402, &declined);
    let read = h.get(&format!("/v1/setup_intents/{intent}")).await;
    assert!(read.body["last_setup_error"].is_object());
    found.answer("setup_intent", "GET /v1/setup_intents/{intent}", &read);
    let confirmed = h
        .post(
            &format!("/v1/setup_intents/{intent}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(confirmed.body["status"], "succeeded");
    found.answer(
        "setup_intent",
        "POST /v1/setup_intents/{intent}/confirm",
        &confirmed,
    );
    let listed = h
        .get(&format!("/v1/setup_intents?customer={customer}"))
        .await;
    found.list("GET /v1/setup_intents", &listed);

    let needs_action = h
        .post(
            "/v1/setup_intents",
            &[
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(needs_action.body["status"], "requires_action");
    found.answer("setup_intent", "POST /v1/setup_intents", &needs_action);
    let to_cancel = h
        .post("/v1/setup_intents", &[("customer", &customer)])
        .await;
    let canceled = h
        .post(&format!("/v1/setup_intents/{}/cancel", id(&to_cancel)), &[])
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    found.answer(
        "setup_intent",
        "POST /v1/setup_intents/{intent}/cancel",
        &canceled,
    );
    found.assert_none();
}

#[tokio::test]
async fn refunds_and_charges() {
    let h = start().await;
    let mut found = Findings::default();
    let paid = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await;
    found.answer("payment_intent", "POST /v1/payment_intents", &paid);
    let intent = id(&paid);
    let charge = paid.body["latest_charge"]
        .as_str()
        .expect("latest_charge")
        .to_owned();
    let succeeded = h.get(&format!("/v1/charges/{charge}")).await;
    found.answer("charge", "GET /v1/charges/{charge}", &succeeded);

    let partial = h
        .post(
            "/v1/refunds",
            &[("payment_intent", &intent), ("amount", "400")],
        )
        .await;
    found.answer("refund", "POST /v1/refunds", &partial);
    let too_much = h
        .post("/v1/refunds", &[("charge", &charge), ("amount", "700")])
        .await;
    found.error("POST /v1/refunds", 400, &too_much);
    let rest = h.post("/v1/refunds", &[("charge", &charge)]).await;
    found.answer("refund", "POST /v1/refunds", &rest);
    let read = h.get(&format!("/v1/refunds/{}", id(&rest))).await;
    found.answer("refund", "GET /v1/refunds/{refund}", &read);
    let listed = h.get(&format!("/v1/refunds?payment_intent={intent}")).await;
    found.list("GET /v1/refunds", &listed);

    let refunded = h.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(refunded.body["refunded"], true);
    found.answer("charge", "GET /v1/charges/{charge}", &refunded);
    let charges = h.get(&format!("/v1/charges?payment_intent={intent}")).await;
    found.list("GET /v1/charges", &charges);

    // A full refund of another payment, by payment intent.
    let other = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "2500"),
                ("currency", "nok"),
                ("payment_method", "pm_card_mastercard"),
                ("confirm", "true"),
            ],
        )
        .await;
    let full = h
        .post("/v1/refunds", &[("payment_intent", &id(&other))])
        .await;
    assert_eq!(full.body["amount"], 2500);
    found.answer("refund", "POST /v1/refunds", &full);
    found.assert_none();
}

/// A local HTTP server that answers 200 to every POST and hands over the bodies.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use poem::web::Data;
    use poem::{EndpointExt, handler, post};

    #[handler]
    fn receive(
        body: String,
        sender: Data<&tokio::sync::mpsc::UnboundedSender<Value>>,
    ) -> &'static str {
        let event = serde_json::from_str(&body).unwrap_or_else(|_| json!({"not JSON": body}));
        sender.send(event).ok();
        "{}"
    }

    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let app = Route::new().at("/hooks", post(receive).data(sender));
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{address}/hooks"), receiver)
}

/// The root schema an event's `data.object` should match, when it is one of them.
fn event_object_schema(object: &Value) -> Option<&'static str> {
    let kind = object["object"].as_str()?;
    [
        "charge",
        "customer",
        "payment_intent",
        "payment_method",
        "refund",
        "setup_intent",
    ]
    .into_iter()
    .find(|name| *name == kind)
}

impl Findings {
    /// An event (from the API or a webhook): the event object, and its `data.object`
    /// against the schema of what it is about.
    fn event(&mut self, context: &str, event: &Value) {
        self.object("event", context, event);
        let object = &event["data"]["object"];
        match event_object_schema(object) {
            Some(name) => self.object(
                name,
                &format!("{context}: data.object of {}", event["type"]),
                object,
            ),
            None => self.record(
                &format!("{context}: data.object of {}", event["type"]),
                vec![format!(
                    "/data/object: a {} object, which this test has no schema for",
                    object["object"]
                )],
            ),
        }
    }
}

#[tokio::test]
async fn events_and_webhook_endpoints() {
    let h = start().await;
    let mut found = Findings::default();
    let (url, mut deliveries) = webhook_receiver().await;

    let created = h
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &url),
                ("enabled_events[]", "*"),
                ("description", "fidelity"),
                ("metadata[team]", "payments"),
            ],
        )
        .await;
    assert!(
        created.body["secret"]
            .as_str()
            .is_some_and(|secret| secret.starts_with("whsec_"))
    );
    found.answer("webhook_endpoint", "POST /v1/webhook_endpoints", &created);
    let endpoint = id(&created);
    let read = h.get(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    found.answer(
        "webhook_endpoint",
        "GET /v1/webhook_endpoints/{webhook_endpoint}",
        &read,
    );
    let updated = h
        .post(
            &format!("/v1/webhook_endpoints/{endpoint}"),
            &[("description", "fidelity, updated")],
        )
        .await;
    found.answer(
        "webhook_endpoint",
        "POST /v1/webhook_endpoints/{webhook_endpoint}",
        &updated,
    );
    let listed = h.get("/v1/webhook_endpoints").await;
    found.list("GET /v1/webhook_endpoints", &listed);

    // Activity of every kind the simulator reports.
    let customer = h.customer(&mut found).await;
    h.post(
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", &customer)],
    )
    .await;
    let paid = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("customer", &customer),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await;
    h.post(
        "/v1/payment_intents",
        &[
            ("amount", "1000"),
            ("currency", "usd"),
            ("customer", &customer),
            ("payment_method", "pm_card_chargeDeclined"),
            ("confirm", "true"),
        ],
    )
    .await;
    h.post(
        "/v1/payment_intents",
        &[
            ("amount", "1000"),
            ("currency", "usd"),
            ("customer", &customer),
            ("payment_method", "pm_card_authenticationRequired"),
            ("confirm", "true"),
        ],
    )
    .await;
    h.post(
        "/v1/refunds",
        &[("payment_intent", &id(&paid)), ("amount", "300")],
    )
    .await;
    h.post(
        "/v1/setup_intents",
        &[
            ("customer", &customer),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
        ],
    )
    .await;
    h.post(
        &format!("/v1/customers/{customer}"),
        &[("name", "Jane Q. Doe")],
    )
    .await;

    let events = h.get("/v1/events?limit=100").await;
    found.list("GET /v1/events", &events);
    let listed: Vec<Value> = events.body["data"].as_array().cloned().unwrap_or_default();
    assert!(listed.len() >= 8, "few events: {}", events.body);
    for event in &listed {
        found.event(
            &format!("event {} from GET /v1/events", event["type"]),
            event,
        );
    }
    let one = h
        .get(&format!(
            "/v1/events/{}",
            listed[0]["id"].as_str().expect("id")
        ))
        .await;
    found.answer("event", "GET /v1/events/{id}", &one);
    let succeeded = h.get("/v1/events?type=payment_intent.succeeded").await;
    found.list("GET /v1/events", &succeeded);

    let report = h
        .send(
            h.http
                .post(format!("{}/sim/control/stripe/webhooks/deliver", h.base))
                .json(&json!({})),
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    let mut delivered = 0;
    while delivered < listed.len() {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("{delivered} of {} events were delivered", listed.len()))
            .expect("the receiver runs");
        delivered += 1;
        found.event(
            &format!("event {} delivered by webhook", event["type"]),
            &event,
        );
    }

    let deleted = h.delete(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    found.answer(
        "deleted_webhook_endpoint",
        "DELETE /v1/webhook_endpoints/{webhook_endpoint}",
        &deleted,
    );
    let missing = h.get(&format!("/v1/webhook_endpoints/{endpoint}")).await;
    found.error(
        "GET /v1/webhook_endpoints/{webhook_endpoint}",
        404,
        &missing,
    );
    found.assert_none();
}
