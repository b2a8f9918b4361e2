//! Durations as people type them (`90s`, `25m`, `2h`) and the TTL rules every VM obeys.

use std::time::Duration;

/// The TTL a VM gets when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(25 * 60);
/// The longest TTL the service allows (`maximumDurationInSeconds` ≤ 28800).
pub const MAX_TTL: Duration = Duration::from_secs(8 * 3600);

/// Errors in a duration or TTL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not of the form number + unit.
    #[error("`{0}` is not a duration: write a whole number and a unit, like 90s, 25m or 2h")]
    Malformed(String),
    /// Shorter than one second.
    #[error("a TTL of `{0}` is too short: the least is 1s")]
    TooShort(String),
    /// Longer than eight hours.
    #[error("a TTL of `{0}` is too long: the service stops every VM after 8h, so the most is 8h")]
    TooLong(String),
}

/// Parses `90s`, `25m`, `2h` (also `1h30m`; a bare number is refused as ambiguous).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Malformed(text.to_owned());
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A VM's time to live: at least 1s, at most 8h; there is no "forever".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(Duration);

impl Default for Ttl {
    fn default() -> Self {
        Ttl(DEFAULT_TTL)
    }
}

impl Ttl {
    /// Checks the bounds.
    pub fn new(d: Duration, shown_as: &str) -> Result<Ttl, DurationError> {
        if d < Duration::from_secs(1) {
            return Err(DurationError::TooShort(shown_as.to_owned()));
        }
        if d > MAX_TTL {
            return Err(DurationError::TooLong(shown_as.to_owned()));
        }
        Ok(Ttl(Duration::from_secs(d.as_secs())))
    }

    /// Parses and checks.
    pub fn parse(text: &str) -> Result<Ttl, DurationError> {
        Ttl::new(parse_duration(text)?, text)
    }

    /// As `maximumDurationInSeconds`.
    #[must_use]
    pub fn as_secs_i32(self) -> i32 {
        i32::try_from(self.0.as_secs()).unwrap_or(i32::MAX)
    }

    /// As a duration.
    #[must_use]
    pub fn duration(self) -> Duration {
        self.0
    }
}

/// A duration the way `ps` shows ages and TTLs: `42s`, `5m`, `2h05m`, `3d4h`.
#[must_use]
pub fn format_short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("25m"), Ok(Duration::from_secs(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "10", "m", "1.5h", "-1s", "1d", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_formats() {
        let f = |s| format_short(Duration::from_secs(s));
        assert_eq!([f(0), f(59), f(60), f(3599), f(3600), f(3660 + 59), f(90000)], ["0s", "59s", "1m", "59m", "1h00m", "1h01m", "1d1h"]);
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(Ttl::default().as_secs_i32(), 1500);
        assert_eq!(Ttl::parse("8h").map(Ttl::as_secs_i32), Ok(28800));
        assert_eq!(Ttl::parse("1s").map(Ttl::as_secs_i32), Ok(1));
        assert!(matches!(Ttl::parse("0s"), Err(DurationError::TooShort(_))));
        assert!(matches!(Ttl::parse("481m"), Err(DurationError::TooLong(_))));
        assert!(Ttl::parse("8h").unwrap().duration() == MAX_TTL);
    }
}
