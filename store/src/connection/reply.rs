//! Decoding Redis replies into the values the store reads.

use redis::Value;

use crate::{Error, Result};

/// Reads a Redis reply as an unsigned integer (integers and numeric strings).
pub(crate) fn as_u64(v: &Value) -> Result<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| Error::Corrupt(format!("negative count {i}"))),
        _ => Ok(as_score(v)?),
    }
}

/// A `ZSCAN` or `HSCAN` reply: the next cursor (0: the key is done) and the
/// flat `member, score` (`field, value`) pairs.
///
/// # Errors
/// [`Error::Corrupt`] for a reply of another shape.
pub(crate) fn as_scan(reply: Vec<Value>) -> Result<(u64, Vec<Value>)> {
    let mut it = reply.into_iter();
    let cursor = it.next().map(|c| as_u64(&c)).transpose()?.unwrap_or(0);
    let pairs = it.next().map(as_array).transpose()?.unwrap_or_default();
    Ok((cursor, pairs))
}

/// Reads a Redis score reply (a decimal string, or a double on RESP3).
pub(crate) fn as_score(v: &Value) -> Result<u64> {
    let f = match v {
        Value::Double(d) => *d,
        Value::Int(i) => *i as f64,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| Error::Corrupt(format!("score {:?} is not a number", String::from_utf8_lossy(b))))?,
        Value::SimpleString(s) => {
            s.parse::<f64>().map_err(|_| Error::Corrupt(format!("score {s:?} is not a number")))?
        }
        other => return Err(Error::Corrupt(format!("expected a score, got {other:?}"))),
    };
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= leaderboard_contract::MAX_SCORE as f64 {
        Ok(f as u64)
    } else {
        Err(Error::Corrupt(format!("score {f} is not an integer in range")))
    }
}

/// Reads an array reply.
pub(crate) fn as_array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Corrupt(format!("expected an array, got {other:?}"))),
    }
}

/// Reads a bulk-string reply as bytes.
pub(crate) fn as_bytes(v: Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(Error::Corrupt(format!("expected a string, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scores() {
        assert_eq!(as_score(&Value::BulkString(b"4821".to_vec())).unwrap(), 4821);
        assert_eq!(as_score(&Value::BulkString(b"9007199254740991".to_vec())).unwrap(), (1 << 53) - 1);
        assert!(as_score(&Value::BulkString(b"1.5".to_vec())).is_err());
        assert!(as_score(&Value::BulkString(b"-1".to_vec())).is_err());
        assert!(as_score(&Value::Nil).is_err());
    }
}
