//! The contract crate's integration tests: the decoder against arbitrary input, the score event's
//! JSON Schema against the decoder, and `docs/contract.md` against the code.

mod contract_doc;
mod decode_never_panics;
mod schema;
