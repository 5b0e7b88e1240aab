//! `cargo xtask stripe-schemas`: the part of Stripe's published OpenAPI document that the
//! Stripe simulator's fidelity test (`simulators/tests/stripe_fidelity.rs`) checks against,
//! written to [`OUTPUT`].
//!
//! # Where the spec comes from
//!
//! Stripe publishes its OpenAPI 3.0 document in <https://github.com/stripe/openapi>:
//! `openapi/spec3.json` / `openapi/spec3.yaml` (v1 endpoints only) and, since 2026,
//! `latest/openapi.spec3.json` (v1 and v2). Nothing in CI downloads it: the extracted subset
//! is committed, and this command is only run by hand when the subset should follow a newer
//! spec. Two ways to give it the spec:
//!
//! - a file you downloaded, JSON or YAML, with the commit it came from:
//!   `curl -LO https://raw.githubusercontent.com/stripe/openapi/<commit>/openapi/spec3.json`
//!   then `cargo xtask stripe-schemas --spec spec3.json --commit <commit>`
//!   (add `--path latest/openapi.spec3.json` when that is the file you took);
//! - a clone of the repository (a bare one works): `cargo xtask stripe-schemas --spec
//!   git:/path/to/openapi.git@<commit-or-tag>:openapi/spec3.yaml`, which records the commit
//!   the revision resolves to.
//!
//! Optionally (`--fixtures`, same two forms, `--fixtures-commit`), Stripe's fixtures
//! (`openapi/fixtures3.json`: one sample of every object, generated with the spec, with
//! every field Stripe always sends), typically from a newer commit than the spec: see
//! `x-stripeFixtures` below.
//!
//! `--check` compares instead of writing. The output is deterministic: the same spec gives
//! the same bytes (keys sorted, two-space indentation, trailing newline).
//!
//! The committed subset was made from a clone of stripe/openapi with
//! `--spec git:<clone>@v524:openapi/spec3.yaml --fixtures git:<clone>@v2349:openapi/fixtures3.json`:
//! the spec of API version 2023-08-16 (the newest spec file the offline copy available when
//! it was made held whole; later ones are larger), completed by the 2026 fixtures. With
//! network access, a newer spec is better: run the command on it and commit the result.
//!
//! # What is kept
//!
//! - `components.schemas`: the objects in [`ROOTS`] and everything they `$ref`, transitively;
//! - `operations`: for each operation in [`OPERATIONS`] (the ones the simulator serves), the
//!   schema of its `200` answer, keyed `"GET /v1/customers"` (list answers are inline
//!   schemas in the spec; the others are `$ref`s into `components.schemas`);
//! - `info.version` (the API version the spec describes) and, under `x-stripeSubset`, the
//!   source repository, commit and path;
//! - with fixtures, `x-stripeFixtures`: their source; `always_present`, by schema location,
//!   the fields of Stripe's samples there; `newer_properties`, by schema location (`charge`, or
//!   `charge#/properties/refunds` inside one), the fields Stripe's samples have and the
//!   schemas do not declare — fields added to the API after the spec's version when the
//!   fixtures are newer — each with the JSON type of the sample's value, or `null` when the
//!   sample is `null` (a sample is not a schema: nullability and inner fields are unknown).
//!
//! To keep the file small, `description` and the vendor keys (`x-…`) are dropped, and
//! *expandable references* are cut: a field that is an id string or, when expanded, an
//! object (an `anyOf` carrying `x-expansionResources`) keeps its `$ref` only when the object
//! is one of [`ROOTS`]; an expansion into any other object is replaced by
//! `{"type": "object", "x-stripeSubsetCut": [names]}` — "string or some object" — and that
//! object's schema is not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::workspace_root;

/// Where the subset is written, relative to the workspace root.
pub const OUTPUT: &str = "simulators/tests/fixtures/stripe-openapi-subset.json";

/// The objects the simulator returns (and the error wrapper), by their schema names in
/// `components.schemas`.
pub const ROOTS: [&str; 11] = [
    "charge",
    "customer",
    "deleted_customer",
    "deleted_webhook_endpoint",
    "error",
    "event",
    "payment_intent",
    "payment_method",
    "refund",
    "setup_intent",
    "webhook_endpoint",
];

/// The operations the simulator serves, as the spec writes their paths.
pub const OPERATIONS: [(&str, &str); 34] = [
    ("get", "/v1/customers"),
    ("post", "/v1/customers"),
    ("get", "/v1/customers/{customer}"),
    ("post", "/v1/customers/{customer}"),
    ("get", "/v1/customers/{customer}/payment_methods"),
    ("get", "/v1/payment_methods"),
    ("post", "/v1/payment_methods"),
    ("get", "/v1/payment_methods/{payment_method}"),
    ("post", "/v1/payment_methods/{payment_method}"),
    ("post", "/v1/payment_methods/{payment_method}/attach"),
    ("post", "/v1/payment_methods/{payment_method}/detach"),
    ("get", "/v1/payment_intents"),
    ("post", "/v1/payment_intents"),
    ("get", "/v1/payment_intents/{intent}"),
    ("post", "/v1/payment_intents/{intent}"),
    ("post", "/v1/payment_intents/{intent}/confirm"),
    ("post", "/v1/payment_intents/{intent}/cancel"),
    ("get", "/v1/setup_intents"),
    ("post", "/v1/setup_intents"),
    ("get", "/v1/setup_intents/{intent}"),
    ("post", "/v1/setup_intents/{intent}/confirm"),
    ("post", "/v1/setup_intents/{intent}/cancel"),
    ("get", "/v1/charges"),
    ("get", "/v1/charges/{charge}"),
    ("get", "/v1/refunds"),
    ("post", "/v1/refunds"),
    ("get", "/v1/refunds/{refund}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/webhook_endpoints"),
    ("post", "/v1/webhook_endpoints"),
    ("get", "/v1/webhook_endpoints/{webhook_endpoint}"),
    ("post", "/v1/webhook_endpoints/{webhook_endpoint}"),
    ("delete", "/v1/webhook_endpoints/{webhook_endpoint}"),
];

const REPOSITORY: &str = "https://github.com/stripe/openapi";
const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// A published document and where it came from.
struct Source {
    document: Value,
    commit: String,
    path: String,
}

impl Source {
    fn describe(&self) -> Value {
        json!({ "repository": REPOSITORY, "commit": self.commit, "path": self.path })
    }
}

/// Where to read one document: `git:<git-dir>@<revision>:<path>`, or a downloaded file with
/// the commit (and path) it came from.
pub struct Input<'a> {
    pub source: &'a str,
    pub commit: Option<&'a str>,
    pub path: Option<&'a str>,
    /// The path a downloaded file usually has in stripe/openapi.
    pub default_path: &'a str,
}

pub fn run(spec: Input<'_>, fixtures: Option<Input<'_>>, check: bool) -> anyhow::Result<()> {
    let spec = load(&spec).context("reading the spec")?;
    let fixtures = fixtures
        .map(|input| load(&input).context("reading the fixtures"))
        .transpose()?;
    let subset = extract(&spec, fixtures.as_ref())?;
    let text = render(&subset);
    let output = workspace_root().join(OUTPUT);
    let schemas = subset["components"]["schemas"]
        .as_object()
        .map_or(0, Map::len);
    if check {
        let committed = std::fs::read_to_string(&output).unwrap_or_default();
        if committed != text {
            bail!(
                "{OUTPUT} differs from what these inputs give; run without --check and commit it"
            );
        }
        println!("{OUTPUT} matches ({schemas} schemas)");
    } else {
        if let Some(directory) = output.parent() {
            std::fs::create_dir_all(directory)?;
        }
        std::fs::write(&output, text)?;
        println!(
            "wrote {OUTPUT}: {schemas} schemas, {} operations, API version {}, from {} at {}{}",
            OPERATIONS.len(),
            subset["info"]["version"].as_str().unwrap_or("?"),
            spec.path,
            spec.commit,
            fixtures.as_ref().map_or(String::new(), |fixtures| format!(
                "; fixtures {} at {}",
                fixtures.path, fixtures.commit
            )),
        );
    }
    Ok(())
}

fn load(input: &Input<'_>) -> anyhow::Result<Source> {
    if let Some(source) = input.source.strip_prefix("git:") {
        if input.commit.is_some() || input.path.is_some() {
            bail!("a commit and a path are for a downloaded file; a git: source names its own");
        }
        let (git_dir, rest) = source
            .rsplit_once('@')
            .context("a git source is git:<git-dir>@<revision>:<path>")?;
        let (revision, path) = rest
            .split_once(':')
            .context("a git source is git:<git-dir>@<revision>:<path>")?;
        let commit = git(
            git_dir,
            &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
        )?
        .trim()
        .to_owned();
        let text = git(git_dir, &["show", &format!("{commit}:{path}")])?;
        let document = parse(&text, path)?;
        return Ok(Source {
            document,
            commit,
            path: path.to_owned(),
        });
    }
    let commit = input.commit.context(
        "the commit of stripe/openapi a downloaded file came from is required: the subset records it",
    )?;
    if commit.len() != 40 || !commit.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        bail!("the commit must be a full 40-digit commit of {REPOSITORY}, not {commit:?}");
    }
    let file = PathBuf::from(input.source);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let document = parse(&text, input.source)?;
    Ok(Source {
        document,
        commit: commit.to_ascii_lowercase(),
        path: input.path.unwrap_or(input.default_path).to_owned(),
    })
}

fn git(git_dir: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(resolve_git_dir(Path::new(git_dir)))
        .args(args)
        .output()
        .context("cannot run git")?;
    if !output.status.success() {
        bail!(
            "git {} in {git_dir} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).context("git printed something that is not UTF-8")
}

/// A work tree's `.git`, or the directory itself when it is a bare repository.
fn resolve_git_dir(directory: &Path) -> PathBuf {
    let dot_git = directory.join(".git");
    if dot_git.exists() {
        dot_git
    } else {
        directory.to_path_buf()
    }
}

/// JSON or YAML (Stripe publishes both, from one source), told apart by the first character.
fn parse(text: &str, name: &str) -> anyhow::Result<Value> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).with_context(|| format!("{name} is not valid JSON"))
    } else {
        serde_norway::from_str(text).with_context(|| format!("{name} is not valid YAML"))
    }
}

fn extract(spec: &Source, fixtures: Option<&Source>) -> anyhow::Result<Value> {
    let document = &spec.document;
    let version = document["info"]["version"]
        .as_str()
        .context("the spec has no info.version")?;
    let all = document["components"]["schemas"]
        .as_object()
        .context("the spec has no components.schemas")?;
    let roots: BTreeSet<&str> = ROOTS.into_iter().collect();
    for root in &roots {
        if !all.contains_key(*root) {
            bail!("the spec has no schema named {root}");
        }
    }

    let mut operations = Map::new();
    let mut missing = Vec::new();
    for (method, path) in OPERATIONS {
        let schema = &document["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        if schema.is_null() {
            missing.push(format!("{} {path}", method.to_uppercase()));
            continue;
        }
        operations.insert(
            format!("{} {path}", method.to_uppercase()),
            trim(schema, &roots),
        );
    }
    if !missing.is_empty() {
        bail!("the spec lacks these operations: {}", missing.join(", "));
    }

    // The closure of the roots and the operations' answers under (cut) references.
    let mut kept: BTreeMap<String, Value> = BTreeMap::new();
    let mut pending: Vec<String> = roots.iter().map(|name| (*name).to_owned()).collect();
    for schema in operations.values() {
        references(schema, &mut pending);
    }
    while let Some(name) = pending.pop() {
        if kept.contains_key(&name) {
            continue;
        }
        let schema = all
            .get(&name)
            .with_context(|| format!("a $ref names {name}, which the spec does not define"))?;
        let trimmed = trim(schema, &roots);
        references(&trimmed, &mut pending);
        kept.insert(name, trimmed);
    }

    let schemas: Map<String, Value> = kept.into_iter().collect();
    let mut subset = json!({
        "openapi": document["openapi"].clone(),
        "info": { "version": version },
        "x-stripeSubset": {
            "generated_by": "cargo xtask stripe-schemas (xtask/src/stripe_schemas.rs); do not edit by hand",
            "source": spec.describe(),
            "roots": ROOTS,
            "trimmed": "description and x-* keys dropped; an expandable field (anyOf id string | object, \
                        x-expansionResources) keeps its $ref only when the object is a root, otherwise the \
                        object is {\"type\": \"object\", \"x-stripeSubsetCut\": [schema names]} and not followed",
        },
        "operations": operations,
    });
    if let Some(fixtures) = fixtures {
        subset["x-stripeFixtures"] = fixture_overlay(&schemas, fixtures)?;
    }
    subset["components"] = json!({ "schemas": schemas });
    Ok(subset)
}

/// A schema without descriptions and vendor keys, its expandable references cut. Keywords
/// are told apart from property names: a property called `description` stays.
fn trim(schema: &Value, roots: &BTreeSet<&str>) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let expandable = object.contains_key("x-expansionResources");
    let mut out = Map::new();
    for (key, value) in object {
        let trimmed = match key.as_str() {
            "description" => continue,
            vendor if vendor.starts_with("x-") => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, property)| (name.clone(), trim(property, roots)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => trim(value, roots),
            "anyOf" if expandable => cut_expansions(value, roots),
            "anyOf" | "oneOf" | "allOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|alternative| trim(alternative, roots))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), trimmed);
    }
    Value::Object(out)
}

/// The alternatives of an expandable field: references to roots stay; the others become one
/// free-form object naming what was cut.
fn cut_expansions(alternatives: &Value, roots: &BTreeSet<&str>) -> Value {
    let Some(alternatives) = alternatives.as_array() else {
        return trim(alternatives, roots);
    };
    let mut kept = Vec::new();
    let mut cut = Vec::new();
    for alternative in alternatives {
        match alternative["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix(SCHEMA_PREFIX))
        {
            Some(name) if !roots.contains(name) => cut.push(name.to_owned()),
            _ => kept.push(trim(alternative, roots)),
        }
    }
    if !cut.is_empty() {
        cut.sort();
        kept.push(json!({ "type": "object", "x-stripeSubsetCut": cut }));
    }
    Value::Array(kept)
}

/// Adds the schema names a trimmed schema references to `out`.
fn references(schema: &Value, out: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    for (key, value) in object {
        match key.as_str() {
            "$ref" => {
                if let Some(name) = value.as_str().and_then(|r| r.strip_prefix(SCHEMA_PREFIX)) {
                    out.push(name.to_owned());
                }
            }
            "properties" => value
                .as_object()
                .into_iter()
                .flatten()
                .for_each(|(_, property)| references(property, out)),
            "items" | "additionalProperties" | "not" => references(value, out),
            "anyOf" | "oneOf" | "allOf" => value
                .as_array()
                .into_iter()
                .flatten()
                .for_each(|alternative| references(alternative, out)),
            _ => {}
        }
    }
}

/// What Stripe's fixtures (`openapi/fixtures3.json`: one sample of each object, with every
/// field Stripe always sends, from the same generator as the spec) show beyond the schemas:
/// `newer_properties`, per schema location, the fields the sample has and the schema does
/// not declare (fields added to the API after the spec's version, when the fixtures are
/// newer), each with the JSON type of the sample's value (`null` when that is `null`);
/// `always_present`, per schema location, the fields of the samples there (Stripe sends
/// every field of an object it has, `null` when empty; optional fields are not in samples).
fn fixture_overlay(schemas: &Map<String, Value>, fixtures: &Source) -> anyhow::Result<Value> {
    let resources = fixtures.document["resources"]
        .as_object()
        .context("the fixtures have no resources")?;
    let mut found = Found::default();
    for root in ROOTS {
        let Some(sample) = resources.get(root) else {
            continue;
        };
        let reference = json!({ "$ref": format!("{SCHEMA_PREFIX}{root}") });
        compare(schemas, "", &reference, sample, &mut found, 0);
    }
    Ok(json!({
        "source": fixtures.describe(),
        "newer_properties": found.newer,
        "always_present": found.present,
    }))
}

/// What the samples show, by schema location.
#[derive(Default)]
struct Found {
    newer: Newer,
    /// The fields every sample at a location has.
    present: BTreeMap<String, BTreeSet<String>>,
}

/// Schema location → field → the JSON type of Stripe's sample value (`null` when the
/// sample is `null`, which says nothing of the type).
type Newer = BTreeMap<String, BTreeMap<String, Value>>;

fn json_type(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Bool(_) => json!("boolean"),
        Value::Number(number) if number.is_i64() || number.is_u64() => json!("integer"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(_) => json!("array"),
        Value::Object(_) => json!("object"),
    }
}

/// Walks a fixture value alongside the schema at `location` (`name#/pointer`, or `""` for
/// a schema that is only a `$ref`).
fn compare(
    schemas: &Map<String, Value>,
    location: &str,
    schema: &Value,
    sample: &Value,
    found: &mut Found,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some((location, schema)) = object_schema(schemas, location, schema) else {
        return;
    };
    match sample {
        Value::Object(fields) => {
            let Some(properties) = schema["properties"].as_object() else {
                return;
            };
            let keys: BTreeSet<String> = fields.keys().cloned().collect();
            let name = location.trim_end_matches('#').to_owned();
            match found.present.get_mut(&name) {
                Some(seen) => seen.retain(|key| keys.contains(key)),
                None => {
                    found.present.insert(name, keys);
                }
            }
            for (key, value) in fields {
                match properties.get(key) {
                    None => {
                        let seen = found
                            .newer
                            .entry(location.trim_end_matches('#').to_owned())
                            .or_default()
                            .entry(key.clone())
                            .or_insert(Value::Null);
                        if seen.is_null() {
                            *seen = json_type(value);
                        }
                    }
                    Some(property) => {
                        let inner = format!("{location}/properties/{}", escape(key));
                        compare(schemas, &inner, property, value, found, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                let inner = format!("{location}/items");
                for item in items {
                    compare(schemas, &inner, item_schema, item, found, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The one schema `schema` stands for where a value is an object or an array: through a
/// `$ref`, or the single such alternative of an `anyOf` (an id string or an object; an
/// object or `null`). `None` when there is none, or several (a polymorphic field).
fn object_schema<'a>(
    schemas: &'a Map<String, Value>,
    location: &str,
    schema: &'a Value,
) -> Option<(String, &'a Value)> {
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix(SCHEMA_PREFIX))
    {
        let target = schemas.get(name)?;
        return object_schema(schemas, &format!("{name}#"), target);
    }
    if schema.get("properties").is_some() || schema.get("items").is_some() {
        return Some((location.to_owned(), schema));
    }
    let alternatives = schema["anyOf"].as_array()?;
    let mut found = alternatives
        .iter()
        .enumerate()
        .filter_map(|(index, alternative)| {
            object_schema(schemas, &format!("{location}/anyOf/{index}"), alternative)
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// A JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Pretty JSON with every object's keys sorted, whatever order the parser kept.
fn render(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(object) => {
                let ordered: BTreeMap<&String, Value> = object
                    .iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect();
                let mut out = Map::new();
                for (key, value) in ordered {
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(value)).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> BTreeSet<&'static str> {
        ROOTS.into_iter().collect()
    }

    #[test]
    fn expansions_into_roots_stay_and_others_are_cut() {
        let field = json!({
            "anyOf": [
                {"maxLength": 5000, "type": "string"},
                {"$ref": "#/components/schemas/customer"},
                {"$ref": "#/components/schemas/deleted_customer"},
                {"$ref": "#/components/schemas/balance_transaction"},
                {"$ref": "#/components/schemas/account"}
            ],
            "description": "The customer.",
            "nullable": true,
            "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/customer"}]}
        });
        assert_eq!(
            trim(&field, &roots()),
            json!({
                "anyOf": [
                    {"maxLength": 5000, "type": "string"},
                    {"$ref": "#/components/schemas/customer"},
                    {"$ref": "#/components/schemas/deleted_customer"},
                    {"type": "object", "x-stripeSubsetCut": ["account", "balance_transaction"]}
                ],
                "nullable": true
            })
        );
    }

    #[test]
    fn plain_references_are_followed_and_output_is_sorted() {
        let mut document = json!({
            "openapi": "3.0.0",
            "info": {"version": "2099-01-01"},
            "paths": {},
            "components": {"schemas": {
                "unused": {"type": "object"},
                "address": {"type": "object", "properties": {"city": {"type": "string", "nullable": true}}}
            }}
        });
        for root in ROOTS {
            document["components"]["schemas"][root] = json!({"type": "object", "properties": {"address": {"$ref": "#/components/schemas/address"}}});
        }
        for (method, path) in OPERATIONS {
            document["paths"][path][method] = json!({"responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/customer"}}}}}});
        }
        let spec = Source {
            document,
            commit: "0".repeat(40),
            path: "openapi/spec3.json".into(),
        };
        let subset = extract(&spec, None).expect("extracts");
        let schemas = subset["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("address"));
        assert!(!schemas.contains_key("unused"));
        let text = render(&subset);
        assert_eq!(text, render(&extract(&spec, None).unwrap()));
        assert!(text.find("\"components\"").unwrap() < text.find("\"info\"").unwrap());
    }

    #[test]
    fn a_property_named_description_is_not_an_annotation() {
        let schema = json!({
            "description": "A customer.",
            "properties": {"description": {"description": "Its description.", "type": "string"}},
            "type": "object"
        });
        assert_eq!(
            trim(&schema, &roots()),
            json!({"properties": {"description": {"type": "string"}}, "type": "object"})
        );
    }

    #[test]
    fn fixtures_show_newer_fields_down_references_and_expansions() {
        let schemas = json!({
            "payment_method": {"type": "object", "properties": {
                "id": {"type": "string"},
                "card": {"anyOf": [{"$ref": "#/components/schemas/payment_method_card"}], "nullable": true},
                "list": {"type": "object", "properties": {"data": {"type": "array",
                    "items": {"$ref": "#/components/schemas/payment_method_card"}}}}
            }},
            "payment_method_card": {"type": "object", "properties": {"brand": {"type": "string"}}}
        });
        let fixtures = Source {
            document: json!({"resources": {"payment_method": {
                "id": "pm_1", "allow_redisplay": "unspecified",
                "card": {"brand": "visa", "display_brand": "visa"},
                "list": {"data": [{"brand": "visa", "regulated_status": null}], "url": "/x"}
            }}}),
            commit: "1".repeat(40),
            path: "openapi/fixtures3.json".into(),
        };
        let overlay = fixture_overlay(schemas.as_object().unwrap(), &fixtures).unwrap();
        assert_eq!(
            overlay["newer_properties"],
            json!({
                "payment_method": {"allow_redisplay": "string"},
                "payment_method#/properties/list": {"url": "string"},
                "payment_method_card": {"display_brand": "string", "regulated_status": null}
            })
        );
        assert_eq!(
            overlay["always_present"]["payment_method"],
            json!(["allow_redisplay", "card", "id", "list"])
        );
        // Two samples of one schema: the fields both have.
        assert_eq!(
            overlay["always_present"]["payment_method_card"],
            json!(["brand"])
        );
    }

    #[test]
    fn yaml_and_json_read_the_same() {
        let json_text = r#"{"a": ["on", "yes", 200, null], "b": {"200": {"x": true}}}"#;
        let yaml_text = "a:\n  - 'on'\n  - 'yes'\n  - 200\n  - null\nb:\n  '200':\n    x: true\n";
        assert_eq!(
            parse(json_text, "j").unwrap(),
            parse(yaml_text, "y").unwrap()
        );
    }
}
