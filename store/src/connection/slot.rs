//! Redis Cluster hash slots: which slot a key lives in.

/// Cluster hash slots.
const SLOTS: u16 = 16_384;

/// A key's cluster slot: CRC16 (XMODEM) of its hash tag, modulo 16384.
pub fn slot_of(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').map(|len| &bytes[open + 1..open + 1 + len]))
        .filter(|tag| !tag.is_empty())
        .unwrap_or(bytes);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_spec() {
        // Values from the Redis Cluster specification's examples and `CLUSTER KEYSLOT`.
        assert_eq!(slot_of("123456789"), 12_739);
        assert_eq!(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
        assert_eq!(slot_of("foo{}{bar}"), slot_of("foo{}{bar}"), "an empty tag hashes the whole key");
        assert_eq!(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    }
}
