//! Signed events (docs/contract.md#signed-events): who may set a score.
//!
//! A game server signs each record with a key of its own: the record carries
//! the key's id in the header `lb-key-id` and, in `lb-signature`, the
//! lowercase hex of HMAC-SHA256 with that key over the record key bytes, one
//! `0x00` byte, then the value bytes. Ingest holds the keys ([`Verifier`]),
//! several at once so a producer can rotate (a new key id, then the old one
//! removed). The `0x00` separator keeps `("ab", "c")` and `("a", "bc")` apart.
//!
//! Comparison is constant time (`hmac`'s `verify_slice`). Secrets never appear
//! in `Debug` output or errors; a key is configured as `id:hex-secret`.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Rejection, RejectionCode};

/// The header naming the signing key.
pub const KEY_ID_HEADER: &str = "lb-key-id";
/// The header carrying the signature (64 lowercase hex digits).
pub const SIGNATURE_HEADER: &str = "lb-signature";
/// Longest key id.
pub const MAX_KEY_ID_BYTES: usize = 64;
/// Shortest secret accepted (bytes): HMAC-SHA256 keys shorter than this are guessable.
pub const MIN_SECRET_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// One producer key: an id and its secret, kept as the HMAC state after the
/// secret (so each record costs only its own bytes, not the key schedule).
#[derive(Clone)]
pub struct ProducerKey {
    id: String,
    keyed: HmacSha256,
}

impl fmt::Debug for ProducerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ProducerKey {
    /// Parses `id:hex-secret` (id: 1 to 64 bytes of `[A-Za-z0-9_.-]`; secret: at least 16 bytes, hex).
    ///
    /// # Errors
    /// A message naming what is wrong, never echoing the secret.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let Some((id, hex_secret)) = spec.split_once(':') else {
            return Err("a producer key is id:hex-secret".into());
        };
        let id_ok = !id.is_empty()
            && id.len() <= MAX_KEY_ID_BYTES
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !id_ok {
            return Err(format!("producer key id {id:?} must be 1 to {MAX_KEY_ID_BYTES} bytes of [A-Za-z0-9_.-]"));
        }
        let secret = hex::decode(hex_secret).map_err(|_| format!("producer key {id}: the secret must be hex"))?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!("producer key {id}: the secret must be at least {MIN_SECRET_BYTES} bytes"));
        }
        let keyed = HmacSha256::new_from_slice(&secret).map_err(|_| format!("producer key {id}: unusable secret"))?;
        Ok(Self { id: id.to_string(), keyed })
    }

    /// The key's id (the `lb-key-id` header).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, key: &[u8], value: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(key);
        mac.update(&[0]);
        mac.update(value);
        mac
    }

    /// The `lb-signature` of a record with this key and value.
    pub fn sign(&self, key: &[u8], value: &[u8]) -> String {
        hex::encode(self.mac(key, value).finalize().into_bytes())
    }
}

/// The keys ingest accepts, and whether every record must be signed.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, ProducerKey>,
    required: bool,
    /// A recovery's replay: a signed record whose key it lacks is refused
    /// (never passed unverified), since the live workers may have judged it
    /// with that key ([`Verifier::for_replay`]).
    replay: bool,
}

impl Verifier {
    /// Accepts records signed with any of `keys`; with `required`, refuses unsigned ones.
    ///
    /// # Errors
    /// Signing required without a key, or two keys with one id.
    pub fn new(keys: Vec<ProducerKey>, required: bool) -> Result<Self, String> {
        if required && keys.is_empty() {
            return Err("signatures are required but no producer key is configured".into());
        }
        let mut by_id = HashMap::with_capacity(keys.len());
        for key in keys {
            let id = key.id.clone();
            if by_id.insert(id.clone(), key).is_some() {
                return Err(format!("producer key id {id} is configured twice"));
            }
        }
        Ok(Self { keys: by_id, required, replay: false })
    }

    /// The same policy for a recovery's replay: a record signed with a key
    /// this verifier lacks (any key, when it has none) is refused, where live
    /// verification without keys would pass it unverified; the caller tells
    /// such records apart ([`Verifier::lacks`]) and fails the recovery.
    #[must_use]
    pub fn for_replay(mut self) -> Self {
        self.replay = true;
        self
    }

    /// Whether any key is configured, or it is a replay's (otherwise every record passes).
    pub fn is_active(&self) -> bool {
        !self.keys.is_empty() || self.replay
    }

    /// Whether this is a replay's verifier that lacks the key `key_id` names:
    /// a record signed with it cannot be judged as the live workers judged it.
    pub fn lacks(&self, key_id: Option<&[u8]>) -> bool {
        self.replay
            && key_id.is_some_and(|id| std::str::from_utf8(id).ok().is_none_or(|id| !self.keys.contains_key(id)))
    }

    /// Checks a record's signature headers (`None`: absent). Records with no
    /// headers pass unless signing is required; a record with headers must
    /// verify whenever keys are configured.
    ///
    /// # Errors
    /// [`RejectionCode::Unsigned`] or [`RejectionCode::BadSignature`], with the reason.
    pub fn check(
        &self,
        key_id: Option<&[u8]>,
        signature: Option<&[u8]>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), Rejection> {
        if !self.is_active() {
            return Ok(());
        }
        let bad = |why: &str| Err(Rejection::new(RejectionCode::BadSignature, why));
        if self.lacks(key_id) {
            return bad("signed with a key this replay was not given");
        }
        let (key_id, signature) = match (key_id, signature) {
            (None, None) if self.required => {
                return Err(Rejection::new(RejectionCode::Unsigned, "no lb-key-id and lb-signature headers"));
            }
            (None, None) => return Ok(()),
            (Some(id), Some(sig)) => (id, sig),
            _ => return bad("lb-key-id and lb-signature come together"),
        };
        let Some(producer) = std::str::from_utf8(key_id).ok().and_then(|id| self.keys.get(id)) else {
            return bad("unknown lb-key-id");
        };
        let mut decoded = [0u8; 32];
        if hex::decode_to_slice(signature, &mut decoded).is_err() {
            return bad("lb-signature must be 64 hex digits");
        }
        let signature = decoded;
        producer.mac(key, value).verify_slice(&signature).or_else(|_| bad("the signature does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f";

    fn key(id: &str) -> ProducerKey {
        ProducerKey::parse(&format!("{id}:{SECRET}")).expect("key")
    }

    #[test]
    fn a_replay_refuses_what_it_cannot_judge_where_live_verification_without_keys_passes_it() {
        let signer = key("gs-1");
        let (k, v) = (b"p-1".as_slice(), br#"{"player":"p-1","score":5}"#.as_slice());
        let sig = signer.sign(k, v);
        let id = Some(signer.id().as_bytes());
        let live = Verifier::new(Vec::new(), false).expect("verifier");
        assert!(live.check(id, Some(sig.as_bytes()), k, v).is_ok(), "no keys live: nothing is verified");
        let replay = Verifier::new(Vec::new(), false).expect("verifier").for_replay();
        assert!(replay.lacks(id) && replay.check(id, Some(sig.as_bytes()), k, v).is_err(), "a replay without the key");
        assert!(!replay.lacks(None) && replay.check(None, None, k, v).is_ok(), "unsigned records pass unless required");
        let retired = Verifier::new(vec![key("gs-0"), signer.clone()], false).expect("verifier").for_replay();
        assert!(!retired.lacks(id) && retired.check(id, Some(sig.as_bytes()), k, v).is_ok(), "with the retired key");
        let forged = retired.check(id, Some("00".repeat(32).as_bytes()), k, v);
        assert!(forged.is_err() && !retired.lacks(id), "a forgery is refused as live, not as unjudgeable");
    }

    #[test]
    fn signatures_verify_and_anything_else_is_refused_with_its_code() {
        let (old, new) = (key("gs-1"), ProducerKey::parse("gs-2:ffeeddccbbaa99887766554433221100").expect("key"));
        let verifier = Verifier::new(vec![old.clone(), new.clone()], true).expect("verifier");
        let (k, v) = (b"p-1".as_slice(), br#"{"player":"p-1","score":5}"#.as_slice());
        // The format's test vector, as Python's `hmac` and `openssl dgst -mac HMAC` compute it.
        assert_eq!(old.sign(k, v), "9999e742dcd3e4caca8489d8add92ea89625073d5c8d4e760f8b137c9cafb26c");
        for signer in [&old, &new] {
            let sig = signer.sign(k, v);
            assert_eq!(sig.len(), 64);
            assert!(
                verifier.check(Some(signer.id().as_bytes()), Some(sig.as_bytes()), k, v).is_ok(),
                "rotation: both keys"
            );
        }
        let sig = old.sign(k, v);
        let code = |r: Result<(), Rejection>| r.expect_err("refused").code;
        assert_eq!(code(verifier.check(None, None, k, v)), RejectionCode::Unsigned);
        assert_eq!(
            code(verifier.check(Some(b"gs-1"), Some(sig.as_bytes()), k, b"{\"player\":\"p-1\",\"score\":9}")),
            RejectionCode::BadSignature
        );
        assert_eq!(
            code(verifier.check(Some(b"gs-2"), Some(sig.as_bytes()), k, v)),
            RejectionCode::BadSignature,
            "another key's"
        );
        assert_eq!(code(verifier.check(Some(b"gs-9"), Some(sig.as_bytes()), k, v)), RejectionCode::BadSignature);
        assert_eq!(code(verifier.check(Some(b"gs-1"), None, k, v)), RejectionCode::BadSignature);
        assert_eq!(code(verifier.check(Some(b"gs-1"), Some(b"zz"), k, v)), RejectionCode::BadSignature);
        // The separator: moving a byte from key to value changes the signature.
        assert_eq!(
            code(verifier.check(Some(b"gs-1"), Some(sig.as_bytes()), b"p-", b"1{\"player\":\"p-1\",\"score\":5}")),
            RejectionCode::BadSignature
        );
        let optional = Verifier::new(vec![old.clone()], false).expect("verifier");
        assert!(optional.check(None, None, k, v).is_ok(), "unsigned records pass when not required");
        assert_eq!(
            code(optional.check(Some(b"gs-1"), Some(&[b'0'; 64]), k, v)),
            RejectionCode::BadSignature,
            "a bad one never does"
        );
        assert!(Verifier::default().check(Some(b"x"), Some(b"y"), k, v).is_ok(), "no keys: signing is off");
    }

    #[test]
    fn keys_parse_strictly_and_never_show_their_secret() {
        let k = key("gs-1");
        assert!(!format!("{k:?}").contains(SECRET));
        for bad in [
            "gs-1",
            "gs-1:zz",
            "gs-1:0001",
            ":000102030405060708090a0b0c0d0e0f",
            "g s:000102030405060708090a0b0c0d0e0f",
        ] {
            let e = ProducerKey::parse(bad).expect_err(bad);
            assert!(!e.contains(SECRET), "{e}");
        }
        assert!(Verifier::new(Vec::new(), true).is_err());
        assert!(Verifier::new(vec![key("a"), key("a")], false).is_err());
    }
}
