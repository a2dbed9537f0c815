//! An entry's metadata: the JSON object a score event may carry in `meta`
//! (a display name, a country, the car of the best lap).
//!
//! It is kept as the producer sent it, keys in their order, values
//! untouched, without the whitespace between tokens (which means nothing in
//! JSON, costs memory per player, and would break line-based files such as
//! snapshots): validated once here (an object of at most [`MAX_META_BYTES`]
//! as sent), then stored, read back and served without being rebuilt. It is
//! held as a [`RawValue`], so serialising a [`Meta`] with `serde_json` writes
//! its text as it is, without parsing it again.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Largest accepted `meta`, in bytes of its JSON text as sent.
pub const MAX_META_BYTES: usize = 512;

/// Why a text is not a valid [`Meta`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// Longer than [`MAX_META_BYTES`].
    #[error("`meta` must be at most {MAX_META_BYTES} bytes, got {0}")]
    TooLarge(usize),
    /// Valid JSON, but not an object.
    #[error("`meta` must be a JSON object, got {0}")]
    NotObject(&'static str),
    /// Not one JSON value.
    #[error("`meta` is not valid JSON: {0}")]
    NotJson(String),
}

/// A validated `meta` object, cheap to clone (one shared allocation).
#[derive(Clone)]
pub struct Meta(Arc<RawValue>);

impl Meta {
    /// Validates `text` as a `meta` value: one JSON object of at most
    /// [`MAX_META_BYTES`] bytes. Whitespace between tokens is dropped;
    /// everything else is kept as sent.
    ///
    /// # Errors
    /// A [`MetaError`] saying which rule the text breaks.
    pub fn parse(text: &str) -> Result<Self, MetaError> {
        let text = text.trim_matches([' ', '\t', '\n', '\r']);
        if text.len() > MAX_META_BYTES {
            return Err(MetaError::TooLarge(text.len()));
        }
        if !text.starts_with('{') {
            let raw: &RawValue = serde_json::from_str(text).map_err(|e| MetaError::NotJson(e.to_string()))?;
            return Err(MetaError::NotObject(crate::event::json_kind(raw.get())));
        }
        // Reading every key checks the whole text: one JSON object, nothing after it.
        unique_keys(text)?;
        Self::held(compact(text))
    }

    /// Holds `text`, a JSON object already checked (or read back from the store).
    fn held(text: String) -> Result<Self, MetaError> {
        let raw = RawValue::from_string(text).map_err(|e| MetaError::NotJson(e.to_string()))?;
        Ok(Self(Arc::from(raw)))
    }

    /// The JSON text, as sent.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON text's bytes (what the store keeps).
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The string field `field` of the object, when it has one.
    pub fn string_field(&self, field: &str) -> Option<String> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(self.as_str()).ok()?;
        map.get(field).and_then(serde_json::Value::as_str).map(str::to_owned)
    }
}

/// `json` without whitespace outside its strings (`json` is valid JSON, so
/// a string's quotes are the only `"` outside an escape).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// Refuses an object whose top level names a key twice: valid JSON syntax,
/// but readers disagree on which value counts (`serde_json` keeps the last).
fn unique_keys(text: &str) -> Result<(), MetaError> {
    let all = serde_json::from_str::<DuplicateCheck<'_>>(text).map_err(|e| MetaError::NotJson(e.to_string()))?.0;
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    if all.iter().all(|(key, _)| seen.insert(key.as_str())) {
        Ok(())
    } else {
        Err(MetaError::NotJson("an object with a duplicated key".into()))
    }
}

/// Every top-level key of an object in order, duplicates included.
struct DuplicateCheck<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for DuplicateCheck<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = DuplicateCheck<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut all = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    all.push(entry);
                }
                Ok(DuplicateCheck(all))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Meta {}

impl std::hash::Hash for Meta {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Self::parse(raw.get()).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&[u8]> for Meta {
    type Error = MetaError;

    /// Reads back a `meta` the store kept: [`Meta::parse`] wrote it, so it is
    /// only checked to be one JSON object within the limit, without looking
    /// for keys given twice or whitespace again (reads do this for every row).
    fn try_from(bytes: &[u8]) -> Result<Self, MetaError> {
        let text = std::str::from_utf8(bytes).map_err(|e| MetaError::NotJson(e.to_string()))?;
        if text.len() > MAX_META_BYTES {
            return Err(MetaError::TooLarge(text.len()));
        }
        if !text.starts_with('{') {
            return Err(MetaError::NotObject(crate::event::json_kind(text)));
        }
        Self::held(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_kept_as_sent() {
        let m = Meta::parse(" {\"name\": \"Ada \\\" \\\\\",\n\t \"country\":\"GB\"} ").expect("valid");
        assert_eq!(m.as_str(), r#"{"name":"Ada \" \\","country":"GB"}"#, "whitespace between tokens only goes");
        assert_eq!(serde_json::to_string(&m).expect("serialises"), m.as_str());
        assert_eq!(m.string_field("country").as_deref(), Some("GB"));
        assert_eq!(m.string_field("missing"), None);
        let back: Meta = serde_json::from_str(m.as_str()).expect("deserialises");
        assert_eq!(back, m);
    }

    #[test]
    fn anything_but_a_small_object_is_refused() {
        for (text, want) in
            [("[1]", "an array"), ("\"name\"", "a string"), ("12", "a number"), ("null", "null"), ("true", "a boolean")]
        {
            assert_eq!(Meta::parse(text), Err(MetaError::NotObject(want)), "{text}");
        }
        assert!(matches!(Meta::parse("{"), Err(MetaError::NotJson(_))));
        assert!(matches!(Meta::parse(r#"{"a":1,"a":2}"#), Err(MetaError::NotJson(_))));
        let exact = format!(r#"{{"n":"{}"}}"#, "x".repeat(MAX_META_BYTES - 8));
        assert_eq!(exact.len(), MAX_META_BYTES);
        assert!(Meta::parse(&exact).is_ok());
        let over = format!(r#"{{"n":"{}"}}"#, "x".repeat(MAX_META_BYTES - 7));
        assert_eq!(Meta::parse(&over), Err(MetaError::TooLarge(MAX_META_BYTES + 1)));
    }
}
