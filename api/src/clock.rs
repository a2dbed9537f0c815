//! RFC 3339 timestamps for `as_of`.

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a time as RFC 3339 with milliseconds, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = OffsetDateTime::from(t);
    let dt = dt.replace_nanosecond(u32::from(dt.millisecond()) * 1_000_000).unwrap_or(dt);
    dt.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_763_800_000_123);
        assert_eq!(rfc3339(t), "2025-11-22T08:26:40.123Z");
    }
}
