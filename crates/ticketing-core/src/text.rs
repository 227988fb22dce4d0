//! Allocation-lean text building for ticket drafts: timestamps written digit by digit, cutting
//! in place, and a fast hasher for the decisions' private lookup tables.
//!
//! Everything here produces exactly what the straightforward spelling produces (`format!`,
//! chrono's `%Y-%m-%d %H:%M:%S`, [`crate::ticket::truncate_chars`]); the tests check that.

use std::hash::{BuildHasher, Hasher};

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::ticket::TicketDraft;

/// Appends `t` as chrono's `%Y-%m-%d %H:%M:%S` would, without parsing a format string.
///
/// Years outside 0..=9999 (written with a sign) and leap seconds (`:60`) take chrono's own path:
/// they never occur in practice and are not worth a second implementation.
pub(crate) fn push_utc(out: &mut String, t: DateTime<Utc>) {
    let naive = t.naive_utc();
    let year = naive.year();
    if !(0..=9999).contains(&year) || naive.nanosecond() >= 1_000_000_000 {
        use std::fmt::Write;
        let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S"));
        return;
    }
    let secs = naive.num_seconds_from_midnight();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let y = year as u32;
    let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    let [y0, y1] = two(y / 100);
    let [y2, y3] = two(y % 100);
    let [mo0, mo1] = two(naive.month());
    let [d0, d1] = two(naive.day());
    let [h0, h1] = two(h);
    let [mi0, mi1] = two(m);
    let [s0, s1] = two(s);
    let bytes = [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b' ', h0, h1, b':', mi0, mi1, b':', s0, s1];
    // Only ASCII digits and separators: always UTF-8.
    out.push_str(std::str::from_utf8(&bytes).unwrap_or_default());
}

/// The length [`push_utc`] appends in the common case (an upper bound for pre-sizing only).
pub(crate) const UTC_LEN: usize = "2026-11-20 10:00:00".len();

/// Cuts `text` in place exactly as [`crate::ticket::truncate_chars`] would, without copying when
/// nothing is cut. The capacity stays: a caller that keeps the text long shrinks it.
pub(crate) fn truncate_in_place(text: &mut String, max: usize) {
    // A string of at most `max` bytes has at most `max` characters: no counting needed.
    if text.len() <= max {
        return;
    }
    let chars = text.chars().count();
    if chars <= max {
        return;
    }
    let marker = TicketDraft::CUT_MARKER;
    let keep = max.saturating_sub(marker.chars().count());
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    text.truncate(end);
    text.push_str(marker);
}

/// Writes `v` in decimal at the end of `buf`, returning the digits.
pub(crate) fn u32_digits(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// A small multiply-rotate hasher (FxHash's scheme, eight bytes at a time) for the core's private
/// lookup tables, whose keys are tenant and device ids from the MSP's own servers. Not
/// flood-resistant, and never used for anything that is stored or sent.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(SEED).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: the table indexes by the low bits.
        let h = self.0.wrapping_mul(SEED);
        h ^ (h >> 29)
    }
}

/// Builds [`FastHasher`]s.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastBuild;

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher::default()
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

/// A `HashSet` with [`FastHasher`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, FastBuild>;

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, TimeZone};

    use super::*;
    use crate::ticket::truncate_chars;

    fn check_utc(t: DateTime<Utc>) {
        let mut out = String::new();
        push_utc(&mut out, t);
        assert_eq!(out, t.format("%Y-%m-%d %H:%M:%S").to_string(), "{t:?}");
    }

    #[test]
    fn timestamps_match_chrono() {
        let start = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        for i in 0..20_000i64 {
            check_utc(start + Duration::seconds(i * 7919 + i * i * 31));
        }
        for (y, mo, d) in [(0, 1, 1), (9999, 12, 31), (2024, 2, 29), (-1, 6, 1), (10_000, 1, 1), (-44, 3, 15)] {
            check_utc(Utc.with_ymd_and_hms(y, mo, d, 0, 0, 0).unwrap());
        }
        // A leap second: chrono writes `:60`.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        check_utc(leap.and_utc());
        let with_nanos = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap() + Duration::nanoseconds(999_999_999);
        check_utc(with_nanos);
    }

    #[test]
    fn cutting_in_place_matches_truncate_chars() {
        let samples = ["", "short", "exactly", "é", "ééééé", "a€b€c€d€e€f", "x y z   ", "日本語のテキスト"];
        for s in samples {
            for max in 0..16 {
                let mut t = s.to_owned();
                truncate_in_place(&mut t, max);
                assert_eq!(t, truncate_chars(s, max), "{s:?} {max}");
            }
        }
        let long = "é".repeat(300);
        let mut t = long.clone();
        truncate_in_place(&mut t, 255);
        assert_eq!(t, truncate_chars(&long, 255));
    }

    #[test]
    fn digits() {
        for v in [0, 1, 9, 10, 99, 100, 4_294_967_295, 1_000_000_000, 123_456] {
            let mut buf = [0u8; 10];
            assert_eq!(u32_digits(v, &mut buf), v.to_string().as_bytes());
        }
    }
}
