//! A validator of JSON values against the subset of JSON Schema that utoipa emits in an
//! OpenAPI 3.1 document: `$ref` to components, `type` (also as a list, for nullable values),
//! `properties`, `required`, `additionalProperties`, `items`, `minItems`, `maxItems`, `enum`,
//! `oneOf`, `anyOf`, `allOf`, `minLength`, `maxLength`, `pattern`, `minimum`, and the formats
//! `uuid` and `date-time`.
//!
//! It is written here rather than taken from the `jsonschema` crate: that crate brings an HTTP
//! client for remote references and a draft-by-draft keyword set, for the few keywords this
//! document uses; and this one is stricter where it matters for drift: a response object with a
//! field the document does not name is an error, though JSON Schema allows it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value;

/// Checks `value` against `schema`, resolving `$ref`s in `doc`; the error names the JSON path
/// that fails and why.
pub(crate) fn check(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    Validator { doc }.check(schema, value, "$", true)
}

struct Validator<'a> {
    doc: &'a Value,
}

impl Validator<'_> {
    /// `closed`: whether fields beyond the declared ones are an error here (not in the parts
    /// of an `allOf`, where the union of the parts decides).
    fn check(&self, schema: &Value, value: &Value, at: &str, closed: bool) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts {
                self.check(part, value, at, false)?;
            }
            if closed {
                self.no_undeclared_fields(schema, value, at)?;
            }
        }
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let errors: Vec<String> = options
                .iter()
                .filter_map(|o| self.check(o, value, at, closed).err())
                .collect();
            match options.len() - errors.len() {
                1 => {}
                0 => {
                    return Err(format!(
                        "{at}: matches none of oneOf: {}",
                        errors.join("; ")
                    ))
                }
                n => return Err(format!("{at}: matches {n} schemas of oneOf")),
            }
        }
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
            let errors: Vec<String> = options
                .iter()
                .filter_map(|o| self.check(o, value, at, false).err())
                .collect();
            if errors.len() == options.len() {
                return Err(format!(
                    "{at}: matches none of anyOf: {}",
                    errors.join("; ")
                ));
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                other => return Err(format!("{at}: a type of {other} in the schema")),
            };
            if !types.iter().any(|t| has_type(value, t)) {
                return Err(format!("{at}: {value} is not of type {types:?}"));
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let (Some(format), Some(text)) = (schema.get("format"), value.as_str()) {
            check_format(format.as_str().unwrap_or_default(), text)
                .map_err(|e| format!("{at}: {text:?}: {e}"))?;
        }
        if let Some(text) = value.as_str() {
            check_text(schema, text).map_err(|e| format!("{at}: {text:?}: {e}"))?;
        }
        if let (Some(minimum), Some(number)) = (schema.get("minimum"), value.as_f64()) {
            if minimum.as_f64().is_some_and(|m| number < m) {
                return Err(format!("{at}: {number} is below the minimum {minimum}"));
            }
        }
        if let Value::Object(fields) = value {
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(name) {
                    return Err(format!("{at}: the required field {name:?} is missing"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, field) in fields {
                let at = format!("{at}.{name}");
                match (
                    properties.and_then(|p| p.get(name)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(declared), _) => self.check(declared, field, &at, true)?,
                    (None, Some(Value::Bool(false))) => {
                        return Err(format!("{at}: not allowed (additionalProperties: false)"))
                    }
                    (None, Some(extra @ Value::Object(_))) => {
                        self.check(extra, field, &at, true)?
                    }
                    (None, _) => {}
                }
            }
            if closed && properties.is_some() && schema.get("allOf").is_none() {
                self.no_undeclared_fields(schema, value, at)?;
            }
        }
        if let Value::Array(elements) = value {
            let count = elements.len() as u64;
            if schema["minItems"].as_u64().is_some_and(|min| count < min)
                || schema["maxItems"].as_u64().is_some_and(|max| count > max)
            {
                return Err(format!("{at}: {count} items, out of the schema's bounds"));
            }
        }
        if let (Some(items), Value::Array(elements)) = (schema.get("items"), value) {
            for (i, element) in elements.iter().enumerate() {
                self.check(items, element, &format!("{at}[{i}]"), true)?;
            }
        }
        Ok(())
    }

    /// The schema a `$ref` names, or the schema itself.
    fn resolve<'s>(&'s self, schema: &'s Value) -> Result<&'s Value, String> {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .ok_or_else(|| format!("a reference outside the components: {reference}"))?;
                let target = &self.doc["components"]["schemas"][name];
                if target.is_null() {
                    return Err(format!("{reference} names no schema"));
                }
                self.resolve(target)
            }
            None => Ok(schema),
        }
    }

    /// Every field of the object `value` is declared by `schema` or one of its `allOf` parts.
    fn no_undeclared_fields(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let Some(fields) = value.as_object() else {
            return Ok(());
        };
        let mut declared = BTreeSet::new();
        if !self.declared(schema, &mut declared)? {
            return Ok(());
        }
        match fields.keys().find(|name| !declared.contains(name.as_str())) {
            Some(name) => Err(format!(
                "{at}.{name}: a field the document does not declare"
            )),
            None => Ok(()),
        }
    }

    /// Adds the fields `schema` declares to `names`; `false` when it admits any field.
    fn declared(&self, schema: &Value, names: &mut BTreeSet<String>) -> Result<bool, String> {
        let schema = self.resolve(schema)?;
        if matches!(schema.get("additionalProperties"), Some(Value::Object(_))) {
            return Ok(false);
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            names.extend(properties.keys().cloned());
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !self.declared(part, names)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// A string's length in characters, and its pattern (the document's patterns are in the syntax
/// the regex crate shares with ECMA-262).
fn check_text(schema: &Value, text: &str) -> Result<(), String> {
    let chars = text.chars().count() as u64;
    if schema["minLength"].as_u64().is_some_and(|min| chars < min)
        || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
    {
        return Err(format!("{chars} characters, out of the schema's bounds"));
    }
    let Some(pattern) = schema["pattern"].as_str() else {
        return Ok(());
    };
    static COMPILED: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !compiled.contains_key(pattern) {
        let regex =
            Regex::new(pattern).map_err(|e| format!("the pattern does not compile: {e}"))?;
        compiled.insert(pattern.to_owned(), regex);
    }
    match compiled[pattern].is_match(text) {
        true => Ok(()),
        false => Err(format!("does not match {pattern}")),
    }
}

fn check_format(format: &str, text: &str) -> Result<(), String> {
    match format {
        "uuid" => uuid::Uuid::parse_str(text)
            .map(drop)
            .map_err(|e| e.to_string()),
        "date-time" => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        // Other formats (int64, binary) say nothing a JSON string or number could break.
        _ => Ok(()),
    }
}

mod tests {
    use serde_json::json;

    use super::check;

    fn doc() -> serde_json::Value {
        json!({"components": {"schemas": {
            "Id": {"type": "string", "format": "uuid"},
            "Item": {"type": "object", "required": ["id", "note"], "properties": {
                "id": {"$ref": "#/components/schemas/Id"},
                "note": {"type": ["string", "null"], "minLength": 1, "maxLength": 3},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "code": {"type": "string", "pattern": "^[a-z]+$"},
                "count": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 1},
                "either": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
            }},
            "Listed": {"allOf": [
                {"$ref": "#/components/schemas/Item"},
                {"type": "object", "required": ["rank"], "properties": {"rank": {"type": "integer"}}},
            ]},
        }}})
    }

    #[test]
    fn the_validator_catches_what_drifts() {
        let doc = doc();
        let item = json!({"$ref": "#/components/schemas/Item"});
        let listed = json!({"$ref": "#/components/schemas/Listed"});
        let id = "0b6f2a3e-5c1d-4f7e-9a8b-1c2d3e4f5a6b";
        assert_eq!(check(&doc, &item, &json!({"id": id, "note": null})), Ok(()));
        let full =
            json!({"id": id, "note": "ab", "code": "x", "count": 0, "tags": ["t"], "either": true});
        assert_eq!(check(&doc, &item, &full), Ok(()));
        assert_eq!(
            check(&doc, &listed, &json!({"id": id, "note": "n", "rank": 1})),
            Ok(())
        );
        for bad in [
            json!({"id": id}),
            json!({"id": "nope", "note": null}),
            json!({"id": id, "note": 3}),
            json!({"id": id, "note": null, "kind": "c"}),
            json!({"id": id, "note": null, "extra": true}),
            json!({"id": id, "note": ""}),
            json!({"id": id, "note": "abcd"}),
            json!({"id": id, "note": null, "code": "X"}),
            json!({"id": id, "note": null, "count": -1}),
            json!({"id": id, "note": null, "tags": ["a", "b"]}),
            json!({"id": id, "note": null, "either": "x"}),
        ] {
            assert!(check(&doc, &item, &bad).is_err(), "{bad}");
        }
        assert!(check(&doc, &listed, &json!({"id": id, "note": null, "rank": "1"})).is_err());
        assert!(check(
            &doc,
            &listed,
            &json!({"id": id, "note": null, "rank": 1, "x": 0})
        )
        .is_err());
    }
}
