//! `docs/contract.md` against the code: the signing test vectors it (and any page of `docs/`)
//! gives producers are the ones the crate's signer computes and ingest's verifier accepts, it
//! lists every dead-letter code, and every link to it from the repository names one of its
//! headings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use leaderboard_contract::signature::{KEY_ID_HEADER, ProducerKey, SIGNATURE_HEADER, Verifier};
use leaderboard_contract::{RejectionCode, decode_record};

/// The repository's root (this crate's parent).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

fn contract_doc() -> String {
    let path = root().join("docs/contract.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The marker comment that precedes a signing test vector, on this page and any other.
const VECTOR_MARKER: &str = "<!-- signing test vector:";

/// Every signing test vector of a page: the fenced block after each marker, as `name: value` lines.
fn test_vectors(page: &str) -> Vec<BTreeMap<String, String>> {
    page.match_indices(VECTOR_MARKER)
        .map(|(at, _)| {
            let block = page[at..].split("```").nth(1).expect("a fenced block follows the marker");
            block
                .lines()
                .skip(1) // The info string.
                .filter(|line| !line.trim().is_empty())
                .map(|line| {
                    let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("not `name: value`: {line:?}"));
                    (name.to_string(), value.trim_end().to_string())
                })
                .collect()
        })
        .collect()
}

/// Signs the vector with the crate's signer and verifies it with ingest's verifier.
fn check_vector(vector: &BTreeMap<String, String>, page: &str) {
    let field =
        |name: &str| vector.get(name).unwrap_or_else(|| panic!("{page}: a test vector has no {name:?} line")).as_str();
    let (key_id, secret) = (field(KEY_ID_HEADER), field("secret (hex)"));
    let (key, value) = (field("record key (UTF-8)").as_bytes(), field("value (UTF-8)").as_bytes());
    let signature = field(SIGNATURE_HEADER);

    let signed: Vec<u8> = [key, &[0], value].concat();
    assert_eq!(field("signed bytes (hex)"), hex::encode(&signed), "{page}: the signed bytes are key, 0x00, value");
    let producer = ProducerKey::parse(&format!("{key_id}:{secret}")).expect("the vector's key is a valid key");
    assert_eq!(producer.sign(key, value), signature, "{page}: the crate's signer computes the documented signature");
    assert_eq!(signature.len(), 64, "{page}");
    assert!(signature.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{page}: lowercase hex");

    let verifier = Verifier::new(vec![producer], true).expect("verifier");
    let check = |sig: &[u8], value: &[u8]| verifier.check(Some(key_id.as_bytes()), Some(sig), key, value);
    assert!(check(signature.as_bytes(), value).is_ok(), "{page}: ingest's verifier accepts the vector");
    let mut altered = value.to_vec();
    if let Some(last) = altered.last_mut() {
        *last ^= 1;
    }
    assert_eq!(
        check(signature.as_bytes(), &altered).map_err(|r| r.code),
        Err(RejectionCode::BadSignature),
        "{page}: one bit changed"
    );
    let event = decode_record(Some(key), Some(value)).expect("the vector's record is a valid event");
    assert_eq!(event.key(), key, "{page}");
}

/// The contract's vector, and every other page's under `docs/` (the producers' page has one).
#[test]
fn the_documented_test_vectors_sign_and_verify() {
    let contract = test_vectors(&contract_doc());
    assert_eq!(contract.len(), 1, "docs/contract.md#test-vector has one vector");
    let mut checked = 0;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for path in pages {
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        for vector in test_vectors(&page) {
            check_vector(&vector, &name);
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn the_contract_lists_every_dead_letter_code() {
    let doc = contract_doc();
    let codes = doc.split("### Codes").nth(1).expect("a Codes section").split("\n## ").next().unwrap_or_default();
    let listed: BTreeSet<&str> = codes.lines().filter_map(|line| line.strip_prefix("| `")?.split('`').next()).collect();
    let known: BTreeSet<&str> = RejectionCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, known, "docs/contract.md#codes lists exactly the crate's codes");
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Text files of the repository that may link to the contract (sources, docs, configuration).
fn repository_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && !["target", "node_modules", "__pycache__"].contains(&name.as_ref()) {
                repository_files(&path, found);
            }
        } else if ["md", "rs", "toml", "yml", "yaml", "sh", "py", "js", "mjs", "json"]
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            found.push(path);
        }
    }
}

#[test]
fn every_link_to_the_contract_names_one_of_its_headings() {
    let doc = contract_doc();
    let mut in_fence = false;
    let mut anchors = BTreeSet::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
    }
    let mut files = Vec::new();
    repository_files(&root(), &mut files);
    let mut broken = Vec::new();
    let mut links = 0;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for (at, _) in text.match_indices("contract.md#") {
            let rest = &text[at + "contract.md#".len()..];
            let target: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            if target.is_empty() {
                continue; // Not a link: the text names the file and `#` (as this test does).
            }
            links += 1;
            if !anchors.contains(&target) {
                broken.push(format!("{}: #{target}", file.strip_prefix(root()).unwrap_or(&file).display()));
            }
        }
    }
    assert!(links > 0, "the repository links to the contract");
    assert!(broken.is_empty(), "links to headings docs/contract.md does not have:\n{}", broken.join("\n"));
}
