//! The committed OpenAPI document (`docs/openapi.json`, linked from `docs/contract.md`) is the one
//! the api serves: a route, parameter or body changed in the code without regenerating the file
//! fails here. `UPDATE_OPENAPI=1` rewrites the file from the served document.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApi;

/// How to regenerate the committed document.
const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo nextest run -p api --features api/testing -E 'test(/openapi/)'";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// JSON pointers where `committed` and `served` differ (at most `limit`).
fn differences(committed: &Value, served: &Value, at: &str, found: &mut Vec<String>, limit: usize) {
    if found.len() >= limit || committed == served {
        return;
    }
    match (committed, served) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (left.get(key), right.get(key)) {
                    (Some(old), Some(new)) => differences(old, new, &here, found, limit),
                    (Some(_), None) => found.push(format!("{here}: only in the committed file")),
                    (None, Some(_)) => found.push(format!("{here}: only in the served document")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (i, (old, new)) in left.iter().zip(right).enumerate() {
                differences(old, new, &format!("{at}/{i}"), found, limit);
            }
        }
        _ => found.push(format!("{}: committed {committed}, served {served}", if at.is_empty() { "/" } else { at })),
    }
}

#[tokio::test]
async fn the_committed_document_is_the_served_one() {
    let api = TestApi::start(&testkit::redis_url(), "single", |_| {}).await;
    let (status, served) = api.json("/openapi.json").await;
    api.stop().await;
    assert_eq!(status, StatusCode::OK);
    assert!(served["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document: {served}");

    let path = committed_path();
    let rendered = format!("{}\n", serde_json::to_string_pretty(&served).expect("a JSON value renders"));
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with\n  {REGENERATE}", path.display()));
    let committed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}; regenerate it with\n  {REGENERATE}", path.display()));
    let mut found = Vec::new();
    differences(&committed, &served, "", &mut found, 20);
    assert!(
        found.is_empty(),
        "docs/openapi.json differs from the document the api serves at /openapi.json:\n  {}\n\
         If the change of the API is meant, regenerate the file, review its diff, and say what changed in \
         docs/contract.md when clients must know:\n  {REGENERATE}",
        found.join("\n  ")
    );
    assert_eq!(text, rendered, "docs/openapi.json is not in the canonical layout; regenerate it with\n  {REGENERATE}");
}
