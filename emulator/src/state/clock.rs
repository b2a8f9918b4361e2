//! Wall-clock helpers: epoch-second timestamps as the service writes them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as epoch seconds with millisecond precision (restJson1 `EpochSeconds`, may be fractional).
pub(crate) fn epoch_now() -> f64 {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    millis as f64 / 1000.0
}

/// The service's `versionStateTimeBucket` suffix: UTC `YYMMDDHH` of `epoch`.
pub(crate) fn hour_bucket(epoch: f64) -> String {
    let secs = epoch.max(0.0) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let hour = secs.rem_euclid(86_400) / 3600;
    format!("{:02}{m:02}{d:02}{hour:02}", y.rem_euclid(100))
}

/// `epoch` as ISO 8601 UTC with second precision (`2026-07-30T06:15:00Z`), as IAM writes dates.
pub(crate) fn iso8601(epoch: f64) -> String {
    let secs = epoch.max(0.0) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let day = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", day / 3600, day % 3600 / 60, day % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_matches_the_recorded_format() {
        // 2026-07-30T06:15:00Z
        assert_eq!(hour_bucket(1_785_392_100.0), "26073006");
        assert_eq!(hour_bucket(0.0), "70010100");
        assert_eq!(iso8601(1_785_392_100.0), "2026-07-30T06:15:00Z");
    }
}
