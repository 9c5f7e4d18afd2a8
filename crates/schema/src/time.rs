//! Timestamp normalisation: RFC 3339 text of any offset and precision, and epoch numbers in
//! s/ms/µs/ns, all to UTC microseconds. Also the UTC day a timestamp falls in (the partition key).

use chrono::{DateTime, NaiveDate, Utc};

/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Parses an RFC 3339 timestamp (`2026-11-02T09:15:02.412Z`, `2026-11-02 10:15:02+01:00`,
/// any number of fractional digits, `+HHMM` offsets accepted too) into UTC microseconds.
/// Fractional digits past the microsecond are truncated (towards the past).
///
/// Returns `None` when the text is not such a timestamp.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second (:60) is folded onto :59.999999, the last instant chrono can represent.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_micros: i64 = 0;
    let mut leap_extra = 0;
    if second == 60 {
        leap_extra = 999_999;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale = 100_000;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_micros += i64::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits(b, i + 4, 2)?, 6)
            } else {
                (digits(b, i + 3, 2)?, 5)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            i += len;
            let secs = i64::from(oh) * 3600 + i64::from(om) * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    let secs =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59))
            - offset_secs;
    Some(
        secs * 1_000_000
            + if leap_extra > 0 {
                leap_extra
            } else {
                frac_micros
            },
    )
}

/// Interprets an epoch number by its magnitude: seconds below 10^11, milliseconds below
/// 10^14, microseconds below 10^17, nanoseconds above. Fractions are kept to the microsecond.
pub fn epoch_to_micros(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let micros = if v < 1e11 {
        v * 1e6
    } else if v < 1e14 {
        v * 1e3
    } else if v < 1e17 {
        v
    } else {
        v / 1e3
    };
    Some(micros.floor() as i64)
}

/// Like [`epoch_to_micros`] for an integer, without floating-point rounding.
pub fn epoch_int_to_micros(v: i64) -> Option<i64> {
    if v < 0 {
        return None;
    }
    Some(if v < 100_000_000_000 {
        v.checked_mul(1_000_000)?
    } else if v < 100_000_000_000_000 {
        v * 1_000
    } else if v < 100_000_000_000_000_000 {
        v
    } else {
        v / 1_000
    })
}

/// Days since 1970-01-01 of the UTC day holding `micros`.
pub fn day_number(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The UTC date of a day number from [`day_number`].
pub fn day_date(day: i32) -> NaiveDate {
    let (y, m, d) = civil_from_days(i64::from(day));
    NaiveDate::from_ymd_opt(y as i32, m, d).unwrap_or(NaiveDate::MIN)
}

/// `YYYY-MM-DD` of a day number, as used in partition names.
pub fn day_string(day: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Formats UTC microseconds as RFC 3339 with microseconds and `Z`.
pub fn format_micros(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => micros.to_string(),
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms, exact over the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_micros(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn agrees_with_chrono_on_offsets_and_precisions() {
        for s in [
            "2026-11-02T09:15:02.412Z",
            "2026-11-02T09:15:02Z",
            "2026-11-02T10:15:02.412+01:00",
            "2026-11-02T04:15:02.412345-05:00",
            "2026-11-02T09:15:02.412345678Z",
            "2024-02-29T23:59:59.999999Z",
            "1970-01-01T00:00:00Z",
            "2026-11-03T00:30:00+05:30",
        ] {
            assert_eq!(parse_rfc3339_micros(s), Some(chrono_micros(s)), "{s}");
        }
    }

    #[test]
    fn accepts_space_lowercase_and_compact_offsets() {
        let z = chrono_micros("2026-11-02T09:15:02.5Z");
        assert_eq!(parse_rfc3339_micros("2026-11-02 09:15:02.5z"), Some(z));
        assert_eq!(parse_rfc3339_micros("2026-11-02T10:15:02.5+0100"), Some(z));
    }

    #[test]
    fn nanoseconds_truncate_towards_the_past() {
        assert_eq!(
            parse_rfc3339_micros("2026-11-02T09:15:02.000000999Z"),
            parse_rfc3339_micros("2026-11-02T09:15:02Z")
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-11-02",
            "2026-13-02T09:15:02Z",
            "2026-02-30T09:15:02Z",
            "2026-11-02T24:00:00Z",
            "2026-11-02T09:15:02",
            "2026-11-02T09:15:02.Z",
            "2026-11-02T09:15:02Zjunk",
            "2026/11/02T09:15:02Z",
            "2026-11-02T09:15:02+25:00",
        ] {
            assert_eq!(parse_rfc3339_micros(s), None, "{s}");
        }
    }

    #[test]
    fn epochs_by_magnitude() {
        let us = 1_762_074_902_412_000;
        assert_eq!(epoch_int_to_micros(1_762_074_902), Some(us - 412_000));
        assert_eq!(epoch_int_to_micros(1_762_074_902_412), Some(us));
        assert_eq!(epoch_int_to_micros(us), Some(us));
        assert_eq!(epoch_int_to_micros(us * 1000 + 7), Some(us));
        assert_eq!(epoch_to_micros(1_762_074_902.412), Some(us));
        assert_eq!(epoch_to_micros(-1.0), None);
    }

    #[test]
    fn days_and_formatting() {
        let t = parse_rfc3339_micros("2026-11-02T23:59:59.999999Z").unwrap();
        assert_eq!(day_string(day_number(t)), "2026-11-02");
        assert_eq!(day_string(day_number(t + 1)), "2026-11-03");
        assert_eq!(day_string(day_number(-1)), "1969-12-31");
        assert_eq!(format_micros(t), "2026-11-02T23:59:59.999999Z");
        assert_eq!(day_date(day_number(t)).to_string(), "2026-11-02");
    }
}

/// Where wall-clock time comes from, so tests can fix it (libraries never call `now()` directly).
pub trait Clock: Send + Sync {
    /// The current time in UTC microseconds.
    fn now_micros(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        Utc::now().timestamp_micros()
    }
}

/// A clock that always answers the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_micros(&self) -> i64 {
        self.0
    }
}
