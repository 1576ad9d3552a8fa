//! Civil-date arithmetic without a date library: UTC calendar dates and RFC 3339 stamps
//! of Unix times (proleptic Gregorian calendar). Pure functions, no clock is read.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), Howard Hinnant's
/// `civil_from_days`.
///
/// ```
/// use switchyard_core::civil::civil_from_days;
///
/// assert_eq!(civil_from_days(0), (1970, 1, 1));
/// assert_eq!(civil_from_days(19_782), (2024, 2, 29));
/// ```
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The UTC (year, month, day) of a time; a time before 1970 counts as 1970-01-01.
pub fn civil_date(at: SystemTime) -> (i64, u32, u32) {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    civil_from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2))
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (RFC 3339 UTC, nanoseconds, as Ollama stamps
/// `created_at`) of a Unix time.
///
/// ```
/// use switchyard_core::civil::rfc3339;
///
/// assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
/// ```
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let plain_year = u64::try_from(year)
        .ok()
        .filter(|y| *y <= 9999 && nanos <= 999_999_999);
    let Some(year4) = plain_year else {
        return format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z"
        );
    };
    // Written digit by digit (this runs once per streamed Ollama answer; `format!` cost
    // about ten times as much).
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year4);
    put(5, 2, u64::from(month));
    put(8, 2, u64::from(day));
    put(11, 2, hour);
    put(14, 2, minute);
    put(17, 2, second);
    put(20, 9, u64::from(nanos));
    // Every byte is an ASCII digit or separator: one char each, one allocation, no
    // UTF-8 check.
    out.iter().copied().map(char::from).collect()
}

/// [`rfc3339`] of a time (a time before 1970 counts as the epoch).
pub fn rfc3339_at(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(civil_date(UNIX_EPOCH), (1970, 1, 1));
        let day = |n: u64| UNIX_EPOCH + Duration::from_secs(n * 86_400 + 3600);
        assert_eq!(civil_date(day(19_783)), (2024, 3, 1));
        assert_eq!(civil_date(day(20_089)), (2025, 1, 1));
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_735_787_045, 0), "2025-01-02T03:04:05.000000000Z");
        assert_eq!(
            rfc3339(1_735_787_045, 7_000_001),
            "2025-01-02T03:04:05.007000001Z"
        );
        assert_eq!(
            rfc3339(253_402_300_799, 0),
            "9999-12-31T23:59:59.000000000Z"
        );
        assert_eq!(
            rfc3339(253_402_300_800, 0),
            "10000-01-01T00:00:00.000000000Z"
        );
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339_at(t), "2023-11-14T22:13:20.000000005Z");
    }
}
