//! Validated board and player names.
//!
//! Both are 1 to [`MAX_ID_BYTES`] bytes of a small ASCII alphabet, so they are
//! safe in Redis keys (no `{`, `}`, `#` or whitespace), in URL paths and in logs.

use std::fmt;

/// Longest board or player name, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// Why a name is not a valid board or player id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The name is empty.
    #[error("must not be empty")]
    Empty,
    /// The name is longer than [`MAX_ID_BYTES`].
    #[error("must be at most {MAX_ID_BYTES} bytes, got {0}")]
    TooLong(usize),
    /// The name contains a byte outside the allowed alphabet.
    #[error("contains a character outside [{allowed}] at byte {position}")]
    BadCharacter {
        /// Zero-based byte offset of the first offending byte.
        position: usize,
        /// The allowed alphabet, for the message.
        allowed: &'static str,
    },
}

fn validate(name: &str, allowed: &'static str, ok: fn(u8) -> bool) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::Empty);
    }
    if name.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong(name.len()));
    }
    match name.bytes().position(|b| !ok(b)) {
        Some(position) => Err(IdError::BadCharacter { position, allowed }),
        None => Ok(()),
    }
}

fn is_player_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-')
}

fn is_board_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $allowed:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The alphabet a valid name is drawn from, as a regex character class body.
            pub const ALLOWED: &'static str = $allowed;

            /// Validates `name`.
            ///
            /// # Errors
            /// [`IdError`] when the name is empty, too long or has a character outside [`Self::ALLOWED`].
            pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
                let name = name.into();
                validate(&name, $allowed, $check)?;
                Ok(Self(name))
            }

            /// Checks `name` without allocating.
            ///
            /// # Errors
            /// As [`Self::new`].
            pub fn check(name: &str) -> Result<(), IdError> {
                validate(name, $allowed, $check)
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name, consuming the id.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A player id: 1 to 64 bytes of `[A-Za-z0-9_.:@-]`.
    PlayerId,
    "A-Za-z0-9_.:@-",
    is_player_byte
);

id_type!(
    /// A board name: 1 to 64 bytes of `[A-Za-z0-9_.-]`.
    BoardId,
    "A-Za-z0-9_.-",
    is_board_byte
);

/// What separates a board's name from a season id in the name its season is
/// stored under (`<board>@<season>`): a byte no client's board name contains,
/// so a season never collides with a board.
pub const SEASON_SEPARATOR: char = '@';

impl BoardId {
    /// The name season `season` of this board is stored under: `<board>@<season>`.
    /// Season ids come from the season arithmetic (`YYYY-MM-DD`, `YYYY-MM`).
    #[must_use]
    pub fn season(&self, season: &str) -> Self {
        Self(format!("{}{SEASON_SEPARATOR}{season}", self.0))
    }

    /// For a season's name, the board's name and the season id.
    pub fn season_parts(&self) -> Option<(&str, &str)> {
        self.0.split_once(SEASON_SEPARATOR)
    }

    /// Whether this names a season of a board rather than a board.
    pub fn is_season(&self) -> bool {
        self.0.contains(SEASON_SEPARATOR)
    }

    /// Parses a name as stored: a board's, or a season's (`<board>@<season>`,
    /// both parts of the board alphabet).
    ///
    /// # Errors
    /// [`IdError`] when either part is not a valid board name.
    pub fn stored(name: &str) -> Result<Self, IdError> {
        match name.split_once(SEASON_SEPARATOR) {
            None => Self::new(name),
            Some((board, season)) => {
                Self::check(season)?;
                Ok(Self::new(board)?.season(season))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_accepts_full_alphabet() {
        assert!(PlayerId::new("aZ09_.:@-").is_ok());
        assert!(PlayerId::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn player_rejects_empty_long_and_bad_bytes() {
        assert_eq!(PlayerId::new(""), Err(IdError::Empty));
        assert_eq!(PlayerId::new("x".repeat(65)), Err(IdError::TooLong(65)));
        for bad in ["a b", "a/b", "a{b}", "é", "a#b", "a\0", "a\n"] {
            assert!(matches!(PlayerId::new(bad), Err(IdError::BadCharacter { .. })), "{bad:?}");
        }
    }

    #[test]
    fn board_is_stricter_than_player() {
        assert!(BoardId::new("season-3.eu_west").is_ok());
        for bad in ["a:b", "a@b", "", "with space"] {
            assert!(BoardId::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(BoardId::new("x".repeat(65)), Err(IdError::TooLong(65)));
    }

    #[test]
    fn seasons_have_names_no_board_can_take() {
        let board = BoardId::new("weekly").expect("board");
        let season = board.season("2026-11-23");
        assert_eq!(season.as_str(), "weekly@2026-11-23");
        assert!(season.is_season() && !board.is_season());
        assert_eq!(season.season_parts(), Some(("weekly", "2026-11-23")));
        assert!(BoardId::new(season.as_str()).is_err(), "a client cannot name a season");
        assert_eq!(BoardId::stored(season.as_str()), Ok(season));
        assert!(BoardId::stored("a@b@c").is_err());
        assert!(BoardId::stored("@x").is_err());
    }

    #[test]
    fn bad_character_reports_position() {
        assert_eq!(PlayerId::check("ab c"), Err(IdError::BadCharacter { position: 2, allowed: PlayerId::ALLOWED }));
    }
}
