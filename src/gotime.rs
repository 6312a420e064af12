//! Go's time formats, parsed and printed exactly as Go does: durations (`time.ParseDuration`,
//! `Duration.String`) and RFC 3339 times (`metav1.Time`). Flags, Secrets and Package fields are
//! written by people who follow Go's rules, and stored objects must read as Go prints them.
use std::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Go's `time.ParseDuration`: signed, nanosecond precision, `"0"` without a unit.
pub fn parse_duration_nanos(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Accumulated in u64 nanoseconds; Go allows up to 1<<63 before the sign is applied.
    let limit: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for d in rest[..int_len].bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(d - b'0')))
                .filter(|&w| w <= limit)
                .ok_or_else(invalid)?;
        }
        rest = &rest[int_len..];
        // The fraction as digits/scale; digits past u64 precision are dropped as Go drops them.
        let (mut fraction, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if let Some(after) = rest.strip_prefix('.') {
            frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for d in after[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(d - b'0')))
                {
                    Some(f) if f <= limit => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &after[frac_len..];
            if int_len == 0 && frac_len == 0 {
                return Err(invalid());
            }
        } else if int_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let per_unit: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        let mut value = whole
            .checked_mul(per_unit)
            .filter(|&v| v <= limit)
            .ok_or_else(invalid)?;
        if frac_len > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale)), truncated.
            let part = (fraction as f64 * (per_unit as f64 / scale)) as u64;
            value = value
                .checked_add(part)
                .filter(|&v| v <= limit)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(value)
            .filter(|&v| v <= limit)
            .ok_or_else(invalid)?;
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else if total == limit {
        Err(invalid())
    } else {
        Ok(total as i64)
    }
}

/// Go's `Duration.String`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`.
pub fn format_duration_nanos(nanos: i64) -> String {
    let negative = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u == 0 {
        return "0s".to_string();
    }
    if u < NANOS_PER_SECOND {
        let (unit, precision) = match u {
            u if u < 1_000 => ("ns", 0),
            u if u < 1_000_000 => ("\u{b5}s", 3),
            _ => ("ms", 6),
        };
        out.push_str(&with_fraction(u, precision));
        out.push_str(unit);
    } else {
        let seconds = with_fraction(u % (60 * NANOS_PER_SECOND), 9);
        let minutes_total = u / (60 * NANOS_PER_SECOND);
        if minutes_total > 0 {
            let hours = minutes_total / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            out.push_str(&format!("{}m", minutes_total % 60));
        }
        out.push_str(&seconds);
        out.push('s');
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^precision` with the fraction's trailing zeros (and a bare point) left out.
fn with_fraction(v: u64, precision: u32) -> String {
    let scale = 10u64.pow(precision);
    let (whole, fraction) = (v / scale, v % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parse a Go duration as imgpkg flags take them (`30s`, `1m30s`, `500ms`, `1h`); negative
/// durations make no sense for a timeout and are refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected a Go duration such as 30s, 1m30s or 500ms");
    match parse_duration_nanos(s) {
        Ok(n) if n >= 0 && !s.starts_with('-') => Ok(Duration::from_nanos(n as u64)),
        _ => Err(bad()),
    }
}

/// An instant as seconds since the Unix epoch (UTC); sub-second digits are dropped, as
/// `metav1.Time` stores whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixSeconds(pub i64);

/// What Go's `time.Parse(time.RFC3339, s)` accepts: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`
/// with real calendar dates; the error says what was expected.
pub fn parse_rfc3339(s: &str) -> Result<UnixSeconds, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time such as 2021-05-05T18:57:06Z");
    let b = s.as_bytes();
    let number = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let punct = |at: usize, c: u8| b.get(at) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(0, 4),
        number(5, 2),
        number(8, 2),
        number(11, 2),
        number(14, 2),
        number(17, 2),
    ) else {
        return Err(bad());
    };
    if !(punct(4, b'-') && punct(7, b'-') && punct(10, b'T') && punct(13, b':') && punct(16, b':')) {
        return Err(bad());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let mut at = 19;
    if punct(at, b'.') || punct(at, b',') {
        let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        at += 1 + digits;
    }
    let offset = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && punct(at + 3, b':') => {
            let (Some(h), Some(m)) = (number(at + 1, 2), number(at + 4, 2)) else {
                return Err(bad());
            };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return Err(bad()),
    };
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(UnixSeconds(local - offset))
}

/// `metav1.Time`'s JSON form: UTC, whole seconds, `Z`. `None` for Go's zero time
/// (`0001-01-01T00:00:00Z`), which Go prints as `null`.
pub fn format_rfc3339_utc(t: UnixSeconds) -> Option<String> {
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    if t.0 == GO_ZERO_TIME {
        return None;
    }
    let days = t.0.div_euclid(86_400);
    let secs = t.0.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let year = if year < 0 {
        format!("-{:04}", -year)
    } else {
        format!("{year:04}")
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        format_duration_nanos(parse_duration_nanos(s).unwrap())
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (input, printed) in [
            ("5m", "5m0s"),
            ("1h", "1h0m0s"),
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("1500ms", "1.5s"),
            ("500ms", "500ms"),
            ("1us", "1\u{b5}s"),
            ("1\u{3bc}s", "1\u{b5}s"),
            ("1.2ms", "1.2ms"),
            ("999ns", "999ns"),
            ("0", "0s"),
            ("0s", "0s"),
            ("-1m", "-1m0s"),
            ("+30s", "30s"),
            ("1h30m", "1h30m0s"),
            ("72h", "72h0m0s"),
            ("1h0m0.5s", "1h0m0.5s"),
            (".5s", "500ms"),
            ("5.s", "5s"),
            ("1.000000001s", "1.000000001s"),
            ("2562047h47m16.854775807s", "2562047h47m16.854775807s"),
            ("-2562047h47m16.854775808s", "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(roundtrip(input), printed, "{input}");
        }
    }

    #[test]
    fn durations_go_refuses_are_refused() {
        for bad in [
            "",
            "5",
            "5 minutes",
            "5min",
            "m",
            ".s",
            "-",
            "1h 30m",
            "1e3s",
            "5M",
            "2562047h47m16.854775808s",
            "9999999999999999999h",
        ] {
            assert!(parse_duration_nanos(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration_nanos("5min").unwrap_err(),
            "time: unknown unit \"min\" in duration \"5min\""
        );
        assert_eq!(
            parse_duration_nanos("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
    }

    #[test]
    fn flag_durations_refuse_negative_values() {
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("-0").is_err());
    }

    #[test]
    fn times_are_stored_in_utc_with_whole_seconds() {
        let utc = |s: &str| format_rfc3339_utc(parse_rfc3339(s).unwrap());
        assert_eq!(
            utc("2021-05-05T18:57:06+02:00").as_deref(),
            Some("2021-05-05T16:57:06Z")
        );
        assert_eq!(
            utc("2021-05-05T18:57:06.999Z").as_deref(),
            Some("2021-05-05T18:57:06Z")
        );
        assert_eq!(
            utc("2021-12-31T23:30:00-01:00").as_deref(),
            Some("2022-01-01T00:30:00Z")
        );
        assert_eq!(
            utc("2024-03-01T00:10:00+01:00").as_deref(),
            Some("2024-02-29T23:10:00Z")
        );
        assert_eq!(
            utc("1970-01-01T00:00:00Z").as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(utc("0001-01-01T00:00:00Z"), None, "Go's zero time prints as null");
        assert_eq!(utc("0001-01-01T01:00:00+01:00"), None);
        assert_eq!(
            utc("0000-01-01T00:30:00+01:00").as_deref(),
            Some("-0001-12-31T23:30:00Z")
        );
    }

    #[test]
    fn times_go_refuses_are_refused() {
        for good in [
            "2021-05-05T18:57:06Z",
            "2021-05-05T18:57:06.123456789Z",
            "2021-05-05T18:57:06,5Z",
            "2024-02-29T00:00:00-07:30",
        ] {
            assert!(parse_rfc3339(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "yesterday",
            "2021-05-05",
            "2021-05-05 18:57:06Z",
            "2021-05-05t18:57:06Z",
            "2021-05-05T18:57:06",
            "2021-05-05T18:57:06z",
            "2021-13-05T18:57:06Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-05-05T24:00:00Z",
            "2021-05-05T18:60:06Z",
            "2021-05-05T18:57:60Z",
            "2021-05-05T18:57:06.Z",
            "2021-05-05T18:57:06+0200",
            "2021-05-05T18:57:06+24:00",
            "2021-05-05T18:57:06Z ",
            "\u{ff12}\u{ff10}\u{ff12}\u{ff11}-05-05T18:57:06Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }
}
