//! Partitions definitions: static keys, UTC time windows and multi-dimensional products.
//!
//! These mirror Dagster's `StaticPartitionsDefinition`, `TimeWindowPartitionsDefinition` (the
//! hourly, daily, weekly and monthly flavours, in UTC) and `MultiPartitionsDefinition`:
//!
//! * a [`StaticPartitions`] is a fixed list of non-empty, unique keys;
//! * a [`TimeWindowPartitions`] cuts time into `[start, end)` windows of one [`Cadence`], keyed
//!   by the window start in a strftime format (`%Y-%m-%d` for daily partitions);
//! * a [`MultiPartitions`] is the product of two or more named dimensions, ordered by name, the
//!   first dimension being the outer loop.
//!
//! [`PartitionsDefinition`] is the enum of the three, with a config-friendly serde form:
//!
//! ```
//! use iomanager_core::partitions::PartitionsDefinition;
//! use iomanager_core::PartitionKey;
//!
//! let def: PartitionsDefinition = serde_json::from_str(
//!     r#"{"type":"time_window","cadence":"daily","start":"2024-01-01","end":"2024-01-04"}"#,
//! )?;
//! assert_eq!(def.keys(), ["2024-01-01", "2024-01-02", "2024-01-03"].map(PartitionKey::from));
//! let window = def.time_window(&[PartitionKey::from("2024-01-02")])?;
//! assert_eq!(window.to_string(), "[2024-01-02T00:00:00Z, 2024-01-03T00:00:00Z)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `Error` is larger than clippy's `result_large_err` threshold crate-wide (its `NotFound` variant
// carries a listing); that is a property of `crate::error`, not of this module.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::format::{Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, Days, Months, SecondsFormat, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::{MULTI_PARTITION_FORBIDDEN, PartitionKey};

/// Dagster's message when a time window is asked of a definition that is not time-partitioned.
pub const NOT_TIME_PARTITIONED: &str = "Tried to get asset partitions time window for an input \
                                        that corresponds to a partitioned asset that is not \
                                        time-partitioned.";

/// How many valid keys an error message shows.
const PREVIEW_KEYS: usize = 5;

/// The fallback format a start or end may be written in, whatever the cadence.
const DATE_FORMAT: &str = "%Y-%m-%d";

// -------------------------------------------------------------------------------------------------
// Cadence and TimeWindow
// -------------------------------------------------------------------------------------------------

/// The length of the windows of a [`TimeWindowPartitions`].
///
/// Windows are aligned in UTC: hourly windows start on the hour, daily ones at midnight, weekly
/// ones on Sunday at midnight and monthly ones on the first of the month at midnight, as with
/// Dagster's `HourlyPartitionsDefinition` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// One-hour windows starting on the hour.
    Hourly,
    /// One-day windows starting at midnight.
    Daily,
    /// Seven-day windows starting on Sunday at midnight.
    Weekly,
    /// Calendar-month windows starting on the first at midnight.
    Monthly,
}

impl Cadence {
    /// Dagster's default key format: `%Y-%m-%d-%H:%M` for hourly windows, `%Y-%m-%d` otherwise.
    pub fn default_format(&self) -> &'static str {
        match self {
            Cadence::Hourly => "%Y-%m-%d-%H:%M",
            Cadence::Daily | Cadence::Weekly | Cadence::Monthly => DATE_FORMAT,
        }
    }

    /// The lower-case name used in configuration: `hourly`, `daily`, `weekly`, `monthly`.
    pub fn name(&self) -> &'static str {
        match self {
            Cadence::Hourly => "hourly",
            Cadence::Daily => "daily",
            Cadence::Weekly => "weekly",
            Cadence::Monthly => "monthly",
        }
    }

    /// The start of the window containing `t`; `None` only at the edge of chrono's range.
    fn floor(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = t.date_naive();
        let start = match self {
            Cadence::Hourly => date.and_hms_opt(t.hour(), 0, 0)?,
            Cadence::Daily => date.and_hms_opt(0, 0, 0)?,
            Cadence::Weekly => {
                let back = u64::from(date.weekday().num_days_from_sunday());
                date.checked_sub_days(Days::new(back))?
                    .and_hms_opt(0, 0, 0)?
            }
            Cadence::Monthly => date.with_day(1)?.and_hms_opt(0, 0, 0)?,
        };
        Some(start.and_utc())
    }

    /// The start of the first window starting at or after `t`.
    fn ceil(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let floor = self.floor(t)?;
        if floor == t {
            Some(t)
        } else {
            self.advance(floor, 1)
        }
    }

    /// `n` windows after the aligned instant `t`.
    fn advance(self, t: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Hourly => t.checked_add_signed(TimeDelta::try_hours(i64::from(n))?),
            Cadence::Daily => t.checked_add_days(Days::new(u64::from(n))),
            Cadence::Weekly => t.checked_add_days(Days::new(7 * u64::from(n))),
            Cadence::Monthly => t.checked_add_months(Months::new(n)),
        }
    }

    /// The window starting at the aligned instant `start`.
    fn window(self, start: DateTime<Utc>) -> TimeWindow {
        // Only reachable at the very end of chrono's range, which constructors keep away from.
        let end = self.advance(start, 1).unwrap_or(DateTime::<Utc>::MAX_UTC);
        TimeWindow { start, end }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A half-open UTC time range `[start, end)`, like Dagster's `TimeWindow`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use iomanager_core::partitions::TimeWindow;
/// let w = TimeWindow {
///     start: Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap(),
///     end: Utc.with_ymd_and_hms(2024, 1, 5, 0, 0, 0).unwrap(),
/// };
/// assert_eq!(w.to_string(), "[2024-01-02T00:00:00Z, 2024-01-05T00:00:00Z)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeWindow {
    /// The first instant in the window.
    pub start: DateTime<Utc>,
    /// The first instant after the window (exclusive).
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// True when `t` lies in `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The length of the window.
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            self.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.end.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

// -------------------------------------------------------------------------------------------------
// Time parsing and formatting helpers
// -------------------------------------------------------------------------------------------------

/// Checks that `fmt` is a valid strftime format chrono can both format and parse with.
fn check_format(fmt: &str) -> Result<()> {
    if fmt.is_empty() {
        return Err(Error::partition(
            "the key format of time window partitions is empty",
        ));
    }
    StrftimeItems::new(fmt).parse().map(|_| ()).map_err(|_| {
        Error::partition(format!(
            "invalid strftime key format {fmt:?} for time window partitions"
        ))
    })
}

/// Formats `t` with `fmt`; `None` when `fmt` holds an invalid specifier.
fn try_format(t: DateTime<Utc>, fmt: &str) -> Option<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    write!(out, "{}", t.format(fmt)).ok()?;
    Some(out)
}

/// Parses `text` with the strftime format `fmt`, as UTC unless the format carries an offset.
///
/// Fields the format leaves out default to the start of their period: a format without a day
/// (`%Y-%m`) means the first of the month, one without a time means midnight.
fn parse_with_format(text: &str, fmt: &str) -> Option<DateTime<Utc>> {
    let items = StrftimeItems::new(fmt).parse().ok()?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
    if parsed.timestamp().is_none() {
        let has_day = parsed.day().is_some()
            || parsed.ordinal().is_some()
            || parsed.weekday().is_some()
            || parsed.week_from_sun().is_some()
            || parsed.week_from_mon().is_some()
            || parsed.isoweek().is_some();
        if !has_day {
            if parsed.month().is_none() {
                parsed.set_month(1).ok()?;
            }
            parsed.set_day(1).ok()?;
        }
        if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
            parsed.set_hour(0).ok()?;
        }
        if parsed.minute().is_none() {
            parsed.set_minute(0).ok()?;
        }
    }
    match parsed.offset() {
        Some(_) => parsed.to_datetime().ok().map(|t| t.with_timezone(&Utc)),
        None => parsed
            .to_naive_datetime_with_offset(0)
            .ok()
            .map(|t| t.and_utc()),
    }
}

/// Parses a start or end: with each of `formats`, then as RFC 3339, then as `%Y-%m-%d`.
fn parse_bound(text: &str, formats: &[&str]) -> Option<DateTime<Utc>> {
    formats
        .iter()
        .find_map(|fmt| parse_with_format(text, fmt))
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
        .or_else(|| parse_with_format(text, DATE_FORMAT))
}

/// The RFC 3339 form of `t`, to the second.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// True for instants whose year is between 1 and 9999, the range a start or end may take.
fn in_supported_range(t: DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

/// `a, b, c, … (12 in all)`: the first keys of a definition, for error messages.
fn preview(keys: impl IntoIterator<Item = String>, total: Option<usize>) -> String {
    let mut shown: Vec<String> = keys.into_iter().take(PREVIEW_KEYS + 1).collect();
    let more = shown.len() > PREVIEW_KEYS;
    shown.truncate(PREVIEW_KEYS);
    let mut text = shown.join(", ");
    if more {
        text.push_str(", …");
    }
    if let Some(total) = total.filter(|&t| t > PREVIEW_KEYS) {
        text.push_str(&format!(" ({total} in all)"));
    }
    text
}

// -------------------------------------------------------------------------------------------------
// StaticPartitions
// -------------------------------------------------------------------------------------------------

/// A fixed list of partition keys, like Dagster's `StaticPartitionsDefinition`.
///
/// Keys are non-empty and unique; their order is the definition order used by ranges.
///
/// ```
/// use iomanager_core::partitions::StaticPartitions;
/// let def = StaticPartitions::new(["us", "eu", "apac"])?;
/// assert_eq!(def.keys(), ["us", "eu", "apac"]);
/// assert!(StaticPartitions::new(["us", "us"]).is_err());
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StaticRepr", into = "StaticRepr")]
pub struct StaticPartitions {
    keys: Vec<String>,
}

impl StaticPartitions {
    /// A definition with these keys, in this order; fails on no key, an empty key or a duplicate.
    pub fn new<I, S>(keys: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        if keys.is_empty() {
            return Err(Error::partition(
                "a static partitions definition needs at least one key",
            ));
        }
        if let Some(i) = keys.iter().position(String::is_empty) {
            return Err(Error::partition(format!(
                "key {i} of the static partitions definition is empty; partition keys may not be \
                 empty"
            )));
        }
        let mut seen = BTreeSet::new();
        for key in &keys {
            if !seen.insert(key.as_str()) {
                return Err(Error::partition(format!(
                    "the static partitions definition lists the key {key:?} twice; keys must be \
                     unique"
                )));
            }
        }
        Ok(Self { keys })
    }

    /// The keys, in definition order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The position of `key` in the definition, if it is one of its keys.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }

    /// Fails unless `key` is one of the keys; the message lists the first valid keys.
    pub fn validate_key(&self, key: &str) -> Result<()> {
        self.check_key(key).map(|_| ()).map_err(Error::partition)
    }

    /// The keys from `start` to `end` inclusive, in definition order.
    pub fn range(&self, start: &str, end: &str) -> Result<Vec<String>> {
        let i = self.check_key(start).map_err(Error::partition)?;
        let j = self.check_key(end).map_err(Error::partition)?;
        if i > j {
            return Err(reversed_range(start, end));
        }
        Ok(self.keys[i..=j].to_vec())
    }

    /// The position of `key`, or the message saying it is unknown.
    fn check_key(&self, key: &str) -> std::result::Result<usize, String> {
        self.position(key).ok_or_else(|| {
            format!(
                "partition key {key:?} is not one of the keys of the static partitions \
                 definition; valid keys are: {}",
                preview(self.keys.iter().cloned(), Some(self.keys.len()))
            )
        })
    }
}

impl fmt::Display for StaticPartitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "static partitions [{}]",
            preview(self.keys.iter().cloned(), Some(self.keys.len()))
        )
    }
}

/// The serde form of [`StaticPartitions`]: `{"keys": [...]}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticRepr {
    keys: Vec<String>,
}

impl TryFrom<StaticRepr> for StaticPartitions {
    type Error = Error;
    fn try_from(repr: StaticRepr) -> Result<Self> {
        Self::new(repr.keys)
    }
}

impl From<StaticPartitions> for StaticRepr {
    fn from(def: StaticPartitions) -> Self {
        StaticRepr { keys: def.keys }
    }
}

fn reversed_range(start: impl fmt::Display, end: impl fmt::Display) -> Error {
    Error::partition(format!(
        "partition range start `{start}` comes after its end `{end}` in the definition order"
    ))
}

// -------------------------------------------------------------------------------------------------
// TimeWindowPartitions
// -------------------------------------------------------------------------------------------------

/// UTC time windows of one [`Cadence`], like Dagster's `TimeWindowPartitionsDefinition`.
///
/// The first partition is the first window whose start is at or after `start`. Without an end,
/// only complete windows exist (those whose end is at or before "now"); with an end (exclusive),
/// the partitions are the windows that start before it, whatever the current time. A key is the
/// window start formatted with the key format (`%Y-%m-%d` for daily windows).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use iomanager_core::partitions::TimeWindowPartitions;
/// let def = TimeWindowPartitions::weekly("2024-01-03")?; // a Wednesday
/// let now = Utc.with_ymd_and_hms(2024, 1, 22, 0, 0, 0).unwrap();
/// assert_eq!(def.keys_until(now), ["2024-01-07", "2024-01-14"]);
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TimeWindowRepr", into = "TimeWindowRepr")]
pub struct TimeWindowPartitions {
    cadence: Cadence,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    format: String,
}

impl TimeWindowPartitions {
    /// Windows of `cadence` from `start`, which is parsed with the cadence's default key format,
    /// as RFC 3339 or as `%Y-%m-%d`.
    pub fn new(cadence: Cadence, start: &str) -> Result<Self> {
        Self::from_parts(cadence, start, None, None)
    }

    /// Windows of `cadence` from the instant `start`.
    pub fn starting_at(cadence: Cadence, start: DateTime<Utc>) -> Result<Self> {
        check_bound("start", start)?;
        Ok(Self {
            cadence,
            start,
            end: None,
            format: cadence.default_format().to_owned(),
        })
    }

    /// Hourly windows, keyed `%Y-%m-%d-%H:%M`.
    pub fn hourly(start: &str) -> Result<Self> {
        Self::new(Cadence::Hourly, start)
    }

    /// Daily windows, keyed `%Y-%m-%d`.
    pub fn daily(start: &str) -> Result<Self> {
        Self::new(Cadence::Daily, start)
    }

    /// Weekly windows starting on Sunday, keyed `%Y-%m-%d`.
    pub fn weekly(start: &str) -> Result<Self> {
        Self::new(Cadence::Weekly, start)
    }

    /// Monthly windows starting on the first, keyed `%Y-%m-%d`.
    pub fn monthly(start: &str) -> Result<Self> {
        Self::new(Cadence::Monthly, start)
    }

    /// Sets the exclusive end, parsed with the key format, the cadence's default format, as
    /// RFC 3339 or as `%Y-%m-%d`; it must be after the start.
    pub fn with_end(self, end: &str) -> Result<Self> {
        let parsed =
            parse_bound(end, &[&self.format, self.cadence.default_format()]).ok_or_else(|| {
                Error::partition(format!(
                    "cannot parse the end {end:?} of {}: expected the key format {:?}, RFC 3339 \
                     or %Y-%m-%d",
                    self.cadence, self.format
                ))
            })?;
        self.with_end_time(parsed)
    }

    /// Sets the exclusive end instant; it must be after the start.
    pub fn with_end_time(mut self, end: DateTime<Utc>) -> Result<Self> {
        check_bound("end", end)?;
        if end <= self.start {
            return Err(Error::partition(format!(
                "the end {} of {} partitions is not after their start {}",
                rfc3339(end),
                self.cadence,
                rfc3339(self.start)
            )));
        }
        self.end = Some(end);
        Ok(self)
    }

    /// Sets the strftime key format. Fails unless the first windows' starts survive being
    /// formatted and parsed back, so every key names exactly one window.
    pub fn with_format(mut self, fmt: &str) -> Result<Self> {
        check_format(fmt)?;
        let first = self.first_window().start;
        let second = self.cadence.window(first).end;
        for t in [first, second] {
            let key = try_format(t, fmt);
            let back = key.as_deref().and_then(|k| parse_with_format(k, fmt));
            if back != Some(t) {
                return Err(Error::partition(format!(
                    "the key format {fmt:?} does not round-trip the {} window starting {}: it \
                     formats as {:?}, which parses back as {}",
                    self.cadence,
                    rfc3339(t),
                    key.unwrap_or_default(),
                    back.map_or_else(|| "nothing".to_owned(), rfc3339)
                )));
            }
        }
        self.format = fmt.to_owned();
        Ok(self)
    }

    /// The cadence.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// The start as given (the first window starts at or after it).
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The exclusive end, if any.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.end
    }

    /// The strftime key format.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The first window: the first one whose start is at or after [`Self::start`].
    pub fn first_window(&self) -> TimeWindow {
        // Constructors keep the start within years 1..=9999, so the ceiling exists.
        let start = self.cadence.ceil(self.start).unwrap_or(self.start);
        self.cadence.window(start)
    }

    /// The keys of the windows that exist at `now`, oldest first: complete windows (ending at or
    /// before `now`) without an end, the windows starting before the end otherwise.
    pub fn keys_until(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut keys = Vec::new();
        let mut window = self.first_window();
        while self.exists_at(&window, now) {
            keys.push(self.format_time(window.start));
            if window.end == DateTime::<Utc>::MAX_UTC {
                break;
            }
            window = self.cadence.window(window.end);
        }
        keys
    }

    /// The keys that exist now; see [`Self::keys_until`].
    pub fn keys(&self) -> Vec<String> {
        self.keys_until(Utc::now())
    }

    /// The window a key names. Fails when the key does not parse with the key format, is not in
    /// its canonical form, or does not start a window of the cadence. The definition's start and
    /// end are not checked here; [`Self::validate_key`] does.
    pub fn window_for_key(&self, key: &str) -> Result<TimeWindow> {
        self.parse_aligned(key)
            .map(|t| self.cadence.window(t))
            .map_err(Error::partition)
    }

    /// The key of the window containing `t`.
    pub fn key_for_time(&self, t: DateTime<Utc>) -> String {
        self.format_time(self.window_for_time(t).start)
    }

    /// The window of the cadence containing `t` (whether or not it is a partition).
    pub fn window_for_time(&self, t: DateTime<Utc>) -> TimeWindow {
        // The floor only fails a few days from chrono's minimum instant.
        self.cadence.window(self.cadence.floor(t).unwrap_or(t))
    }

    /// Fails unless `key` names a window of this definition: a well-formed, aligned key whose
    /// window starts at or after the first window and before the end. "Now" is not checked, so
    /// the window may still be running or in the future.
    pub fn validate_key(&self, key: &str) -> Result<()> {
        self.check_key(key).map(|_| ()).map_err(Error::partition)
    }

    /// The keys from `start` to `end` inclusive, computed from the two windows (no need for
    /// "now").
    pub fn range(&self, start: &str, end: &str) -> Result<Vec<String>> {
        let first = self.check_key(start).map_err(Error::partition)?;
        let last = self.check_key(end).map_err(Error::partition)?;
        if first > last {
            return Err(reversed_range(start, end));
        }
        let mut keys = Vec::new();
        let mut t = first;
        while t <= last {
            keys.push(self.format_time(t));
            match self.cadence.advance(t, 1) {
                Some(next) => t = next,
                None => break,
            }
        }
        Ok(keys)
    }

    /// The window from the start of the earliest key's window to the end of the latest key's.
    pub fn time_window_for_keys<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<TimeWindow> {
        let mut span: Option<TimeWindow> = None;
        for key in keys {
            let start = self.check_key(key).map_err(Error::partition)?;
            let w = self.cadence.window(start);
            span = Some(match span {
                None => w,
                Some(s) => TimeWindow {
                    start: s.start.min(w.start),
                    end: s.end.max(w.end),
                },
            });
        }
        span.ok_or_else(|| {
            Error::invalid_context(
                "Tried to get a time window for an empty list of partition keys; at least one \
                 key is needed",
            )
        })
    }

    /// Builds a definition from its configuration parts, validating each.
    fn from_parts(
        cadence: Cadence,
        start: &str,
        end: Option<&str>,
        format: Option<&str>,
    ) -> Result<Self> {
        let format = format.unwrap_or(cadence.default_format());
        check_format(format)?;
        let start_time =
            parse_bound(start, &[format, cadence.default_format()]).ok_or_else(|| {
                Error::partition(format!(
                    "cannot parse the start {start:?} of {cadence} partitions: expected the key \
                     format {format:?}, RFC 3339 or %Y-%m-%d"
                ))
            })?;
        let mut def = Self::starting_at(cadence, start_time)?;
        if format != cadence.default_format() {
            def = def.with_format(format)?;
        }
        match end {
            Some(end) => def.with_end(end),
            None => Ok(def),
        }
    }

    /// Whether the window is a partition at `now`.
    fn exists_at(&self, window: &TimeWindow, now: DateTime<Utc>) -> bool {
        match self.end {
            Some(end) => window.start < end,
            None => window.end <= now,
        }
    }

    /// Formats an instant with the key format.
    fn format_time(&self, t: DateTime<Utc>) -> String {
        // The format is checked by every constructor, so formatting cannot fail; RFC 3339 is a
        // defensive fallback that is never reached.
        try_format(t, &self.format).unwrap_or_else(|| rfc3339(t))
    }

    /// A start or end as written in configuration: in the key format when that round-trips,
    /// RFC 3339 otherwise.
    fn bound_to_string(&self, t: DateTime<Utc>) -> String {
        try_format(t, &self.format)
            .filter(|text| parse_with_format(text, &self.format) == Some(t))
            .unwrap_or_else(|| rfc3339(t))
    }

    /// The start of the window `key` names, or why it names none.
    fn parse_aligned(&self, key: &str) -> std::result::Result<DateTime<Utc>, String> {
        let t = parse_with_format(key, &self.format).ok_or_else(|| {
            format!(
                "partition key {key:?} does not match the key format {:?} of {self}; valid keys \
                 look like {}",
                self.format,
                preview(self.first_keys(), None)
            )
        })?;
        let canonical = self.format_time(t);
        if canonical != key {
            return Err(format!(
                "partition key {key:?} is not in the canonical form of the key format {:?}; \
                 write it as {canonical:?}",
                self.format
            ));
        }
        let floor = self.cadence.floor(t).unwrap_or(t);
        if floor != t {
            return Err(format!(
                "partition key {key:?} does not start a window of {self}; the window containing \
                 it is {:?}",
                self.format_time(floor)
            ));
        }
        Ok(t)
    }

    /// The start of the window `key` names when it is a partition of this definition.
    fn check_key(&self, key: &str) -> std::result::Result<DateTime<Utc>, String> {
        let t = self.parse_aligned(key)?;
        let first = self.first_window().start;
        if t < first {
            return Err(format!(
                "partition key {key:?} is before the first partition {:?} of {self}",
                self.format_time(first)
            ));
        }
        if let Some(end) = self.end.filter(|&end| t >= end) {
            return Err(format!(
                "partition key {key:?} is at or after the end {} of {self}; the first keys are {}",
                self.bound_to_string(end),
                preview(self.first_keys(), None)
            ));
        }
        Ok(t)
    }

    /// The first few keys, ignoring "now" (for error messages).
    fn first_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut window = self.first_window();
        while keys.len() <= PREVIEW_KEYS && self.end.is_none_or(|end| window.start < end) {
            keys.push(self.format_time(window.start));
            window = self.cadence.window(window.end);
        }
        keys
    }
}

impl fmt::Display for TimeWindowPartitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} partitions starting {}",
            self.cadence,
            self.bound_to_string(self.start)
        )?;
        if let Some(end) = self.end {
            write!(f, " and ending before {}", self.bound_to_string(end))?;
        }
        write!(f, " (key format {:?})", self.format)
    }
}

fn check_bound(what: &str, t: DateTime<Utc>) -> Result<()> {
    if in_supported_range(t) {
        Ok(())
    } else {
        Err(Error::partition(format!(
            "the {what} {} of time window partitions is outside the years 1 to 9999",
            rfc3339(t)
        )))
    }
}

/// The serde form of [`TimeWindowPartitions`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeWindowRepr {
    cadence: Cadence,
    start: String,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

impl TryFrom<TimeWindowRepr> for TimeWindowPartitions {
    type Error = Error;
    fn try_from(repr: TimeWindowRepr) -> Result<Self> {
        Self::from_parts(
            repr.cadence,
            &repr.start,
            repr.end.as_deref(),
            repr.format.as_deref(),
        )
    }
}

impl From<TimeWindowPartitions> for TimeWindowRepr {
    fn from(def: TimeWindowPartitions) -> Self {
        TimeWindowRepr {
            cadence: def.cadence,
            start: def.bound_to_string(def.start),
            end: def.end.map(|end| def.bound_to_string(end)),
            format: Some(def.format),
        }
    }
}

// -------------------------------------------------------------------------------------------------
// MultiPartitions
// -------------------------------------------------------------------------------------------------

/// The product of two or more named dimensions, like Dagster's `MultiPartitionsDefinition`
/// (which allows exactly two).
///
/// Dimensions are ordered by name; the product enumerates the first dimension as the outer
/// loop. A dimension is a static or time window definition, never another multi-dimensional
/// one, and its keys may not contain `|`, `[`, `]` or `,`.
///
/// ```
/// use iomanager_core::partitions::{MultiPartitions, PartitionsDefinition};
/// let def = MultiPartitions::new([
///     ("region", PartitionsDefinition::static_keys(["eu", "us"])?),
///     ("color", PartitionsDefinition::static_keys(["red", "blue"])?),
/// ])?;
/// let keys: Vec<String> = def.keys().iter().map(ToString::to_string).collect();
/// assert_eq!(keys, ["red|eu", "red|us", "blue|eu", "blue|us"]);
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MultiRepr", into = "MultiRepr")]
pub struct MultiPartitions {
    dims: Vec<(String, PartitionsDefinition)>,
}

impl MultiPartitions {
    /// The product of `dims`: two or more distinct, non-empty dimension names, each a static or
    /// time window definition whose keys hold none of `|`, `[`, `]`, `,`.
    pub fn new<I, N>(dims: I) -> Result<Self>
    where
        I: IntoIterator<Item = (N, PartitionsDefinition)>,
        N: Into<String>,
    {
        let mut sorted: Vec<(String, PartitionsDefinition)> = dims
            .into_iter()
            .map(|(name, def)| (name.into(), def))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        if sorted.len() < 2 {
            return Err(Error::partition(format!(
                "a multi-dimensional partitions definition needs two or more dimensions, got {}",
                sorted.len()
            )));
        }
        for pair in sorted.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(Error::partition(format!(
                    "the multi-dimensional partitions definition names the dimension `{}` twice",
                    pair[0].0
                )));
            }
        }
        for (name, def) in &sorted {
            if name.is_empty() {
                return Err(Error::partition(
                    "a dimension of a multi-dimensional partitions definition has an empty name",
                ));
            }
            check_dimension(name, def)?;
        }
        Ok(Self { dims: sorted })
    }

    /// The dimensions, sorted by name.
    pub fn dimensions(&self) -> &[(String, PartitionsDefinition)] {
        &self.dims
    }

    /// The dimension names, sorted.
    pub fn dimension_names(&self) -> impl Iterator<Item = &str> {
        self.dims.iter().map(|(name, _)| name.as_str())
    }

    /// The definition of dimension `name`.
    pub fn dimension(&self, name: &str) -> Option<&PartitionsDefinition> {
        self.dims
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, def)| def)
    }

    /// The time window dimension, when there is exactly one.
    pub fn time_dimension(&self) -> Option<(&str, &TimeWindowPartitions)> {
        let mut times = self.dims.iter().filter_map(|(name, def)| match def {
            PartitionsDefinition::TimeWindow(t) => Some((name.as_str(), t)),
            _ => None,
        });
        match (times.next(), times.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// The product of the dimensions' keys at `now`, the first dimension (by name) outermost.
    pub fn keys_until(&self, now: DateTime<Utc>) -> Vec<PartitionKey> {
        let mut product: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for (name, def) in &self.dims {
            let values = dimension_values(def, now);
            let mut next = Vec::with_capacity(product.len() * values.len());
            for prefix in &product {
                for value in &values {
                    let mut key = prefix.clone();
                    key.insert(name.clone(), value.clone());
                    next.push(key);
                }
            }
            product = next;
        }
        product.into_iter().map(PartitionKey::Multi).collect()
    }

    /// The keys that exist now; see [`Self::keys_until`].
    pub fn keys(&self) -> Vec<PartitionKey> {
        self.keys_until(Utc::now())
    }

    /// Fails unless `key` is a multi-dimensional key with exactly these dimensions, each value a
    /// valid key of its dimension.
    pub fn validate_key(&self, key: &PartitionKey) -> Result<()> {
        self.check_key(key).map_err(Error::partition)
    }

    /// The keys from `start` to `end` inclusive in product order (a slice of
    /// [`Self::keys_until`]), time dimensions running to `now` or to the later of the two keys.
    pub fn range_until(
        &self,
        start: &PartitionKey,
        end: &PartitionKey,
        now: DateTime<Utc>,
    ) -> Result<Vec<PartitionKey>> {
        self.validate_key(start)?;
        self.validate_key(end)?;
        let mut effective_now = now;
        for (name, def) in &self.dims {
            if let PartitionsDefinition::TimeWindow(t) = def {
                for key in [start, end] {
                    if let Some(w) = key.dimension(name).and_then(|v| t.window_for_key(v).ok()) {
                        effective_now = effective_now.max(w.end);
                    }
                }
            }
        }
        let values: Vec<Vec<String>> = self
            .dims
            .iter()
            .map(|(_, def)| dimension_values(def, effective_now))
            .collect();
        let first = self.product_index(start, &values)?;
        let last = self.product_index(end, &values)?;
        if first > last {
            return Err(reversed_range(start, end));
        }
        Ok((first..=last)
            .map(|index| self.product_key(index, &values))
            .collect())
    }

    /// The position of `key` in the product of `values` (mixed radix, first dimension
    /// most significant).
    fn product_index(&self, key: &PartitionKey, values: &[Vec<String>]) -> Result<usize> {
        let mut index = 0usize;
        for ((name, _), vals) in self.dims.iter().zip(values) {
            let value = key.dimension(name).unwrap_or_default();
            let pos = vals.iter().position(|v| v == value).ok_or_else(|| {
                Error::partition(format!(
                    "partition key `{key}`: value {value:?} of dimension `{name}` is not among \
                     its current keys"
                ))
            })?;
            index = index * vals.len() + pos;
        }
        Ok(index)
    }

    /// The key at `index` in the product of `values`.
    fn product_key(&self, mut index: usize, values: &[Vec<String>]) -> PartitionKey {
        let mut key = BTreeMap::new();
        for ((name, _), vals) in self.dims.iter().zip(values).rev() {
            // `index` comes from `product_index`, so every dimension has values.
            let len = vals.len().max(1);
            if let Some(value) = vals.get(index % len) {
                key.insert(name.clone(), value.clone());
            }
            index /= len;
        }
        PartitionKey::Multi(key)
    }

    fn check_key(&self, key: &PartitionKey) -> std::result::Result<(), String> {
        let names: Vec<&str> = self.dimension_names().collect();
        match key {
            PartitionKey::Single(s) => Err(format!(
                "partition key {s:?} is one-dimensional, but {self} needs one value for each of \
                 the dimensions {names:?}; build it with PartitionKey::multi"
            )),
            PartitionKey::Multi(map) => {
                let given: Vec<&str> = map.keys().map(String::as_str).collect();
                if given != names {
                    return Err(format!(
                        "partition key `{key}` has the dimensions {given:?}, but {self} has the \
                         dimensions {names:?}"
                    ));
                }
                for (name, def) in &self.dims {
                    let value = map.get(name).cloned().unwrap_or_default();
                    def.check_key(&PartitionKey::Single(value)).map_err(|msg| {
                        format!("partition key `{key}`, dimension `{name}`: {msg}")
                    })?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for MultiPartitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("multi-dimensional partitions with dimensions ")?;
        for (i, (name, def)) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}` ({def})")?;
        }
        Ok(())
    }
}

/// Checks that `def` can be dimension `name` of a multi-dimensional definition.
fn check_dimension(name: &str, def: &PartitionsDefinition) -> Result<()> {
    let forbidden = |key: &str| key.chars().find(|c| MULTI_PARTITION_FORBIDDEN.contains(c));
    match def {
        PartitionsDefinition::Multi(_) => Err(Error::partition(format!(
            "dimension `{name}` is itself multi-dimensional; multi-dimensional partitions \
             definitions cannot be nested"
        ))),
        PartitionsDefinition::Static(s) => {
            match s.keys().iter().find_map(|k| forbidden(k).map(|c| (k, c))) {
                Some((key, c)) => Err(Error::partition(format!(
                    "key {key:?} of dimension `{name}` contains {c:?}; keys of a \
                     multi-dimensional partitions definition may not contain | [ ] ,"
                ))),
                None => Ok(()),
            }
        }
        PartitionsDefinition::TimeWindow(t) => {
            // Every key shares the format's literal characters, so the first key tells.
            let key = t.format_time(t.first_window().start);
            match forbidden(&key) {
                Some(c) => Err(Error::partition(format!(
                    "the key format {:?} of dimension `{name}` produces keys like {key:?} that \
                     contain {c:?}; keys of a multi-dimensional partitions definition may not \
                     contain | [ ] ,",
                    t.format()
                ))),
                None => Ok(()),
            }
        }
    }
}

/// The keys of one dimension at `now`, as strings.
fn dimension_values(def: &PartitionsDefinition, now: DateTime<Utc>) -> Vec<String> {
    match def {
        PartitionsDefinition::Static(s) => s.keys().to_vec(),
        PartitionsDefinition::TimeWindow(t) => t.keys_until(now),
        // Dimensions are never multi-dimensional (checked by `MultiPartitions::new`); their
        // string forms would be the natural values if they were.
        PartitionsDefinition::Multi(m) => {
            m.keys_until(now).iter().map(ToString::to_string).collect()
        }
    }
}

/// The serde form of [`MultiPartitions`]: `{"dimensions": {"name": {...}, ...}}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MultiRepr {
    dimensions: BTreeMap<String, PartitionsDefinition>,
}

impl TryFrom<MultiRepr> for MultiPartitions {
    type Error = Error;
    fn try_from(repr: MultiRepr) -> Result<Self> {
        Self::new(repr.dimensions)
    }
}

impl From<MultiPartitions> for MultiRepr {
    fn from(def: MultiPartitions) -> Self {
        MultiRepr {
            dimensions: def.dims.into_iter().collect(),
        }
    }
}

// -------------------------------------------------------------------------------------------------
// PartitionsDefinition
// -------------------------------------------------------------------------------------------------

/// How an asset is partitioned: static keys, time windows or a multi-dimensional product.
///
/// The serde form is tagged by `type`:
///
/// * `{"type": "static", "keys": ["a", "b"]}`
/// * `{"type": "time_window", "cadence": "daily", "start": "2024-01-01", "end": null,
///   "format": "%Y-%m-%d"}` (`end` and `format` may be left out; `start` and `end` are written
///   in the key format or RFC 3339)
/// * `{"type": "multi", "dimensions": {"color": {...}, "date": {...}}}`
///
/// Deserializing validates exactly as the constructors do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PartitionsDefinition {
    /// A fixed list of keys.
    Static(StaticPartitions),
    /// UTC time windows of one cadence.
    TimeWindow(TimeWindowPartitions),
    /// The product of named dimensions.
    Multi(MultiPartitions),
}

impl PartitionsDefinition {
    /// A static definition with these keys; see [`StaticPartitions::new`].
    pub fn static_keys<I, S>(keys: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        StaticPartitions::new(keys).map(Self::Static)
    }

    /// Hourly windows from `start`; see [`TimeWindowPartitions::hourly`].
    pub fn hourly(start: &str) -> Result<Self> {
        TimeWindowPartitions::hourly(start).map(Self::TimeWindow)
    }

    /// Daily windows from `start`; see [`TimeWindowPartitions::daily`].
    pub fn daily(start: &str) -> Result<Self> {
        TimeWindowPartitions::daily(start).map(Self::TimeWindow)
    }

    /// Weekly windows from `start`; see [`TimeWindowPartitions::weekly`].
    pub fn weekly(start: &str) -> Result<Self> {
        TimeWindowPartitions::weekly(start).map(Self::TimeWindow)
    }

    /// Monthly windows from `start`; see [`TimeWindowPartitions::monthly`].
    pub fn monthly(start: &str) -> Result<Self> {
        TimeWindowPartitions::monthly(start).map(Self::TimeWindow)
    }

    /// A multi-dimensional product; see [`MultiPartitions::new`].
    pub fn multi<I, N>(dims: I) -> Result<Self>
    where
        I: IntoIterator<Item = (N, PartitionsDefinition)>,
        N: Into<String>,
    {
        MultiPartitions::new(dims).map(Self::Multi)
    }

    /// The keys that exist at `now`, in definition order. `now` only matters for time windows
    /// without an end.
    pub fn keys_until(&self, now: DateTime<Utc>) -> Vec<PartitionKey> {
        match self {
            Self::Static(s) => s.keys().iter().map(PartitionKey::from).collect(),
            Self::TimeWindow(t) => t
                .keys_until(now)
                .into_iter()
                .map(PartitionKey::Single)
                .collect(),
            Self::Multi(m) => m.keys_until(now),
        }
    }

    /// The keys that exist now, in definition order.
    pub fn keys(&self) -> Vec<PartitionKey> {
        self.keys_until(Utc::now())
    }

    /// Fails unless `key` is a partition of this definition: a single key of a static or time
    /// window definition, a multi-dimensional key with exactly the dimension names of a
    /// multi-dimensional one. Time keys are checked against the start and end, not against the
    /// current time.
    pub fn validate_key(&self, key: &PartitionKey) -> Result<()> {
        self.check_key(key).map_err(Error::partition)
    }

    /// Reads a key from its string form: the key itself, or for a multi-dimensional definition
    /// the values joined by `|` in dimension-name order. The key is validated.
    pub fn parse_key(&self, text: &str) -> Result<PartitionKey> {
        let key = match self {
            Self::Static(_) | Self::TimeWindow(_) => PartitionKey::from(text),
            Self::Multi(m) => {
                let values: Vec<&str> = text.split(crate::key::MULTI_PARTITION_DELIMITER).collect();
                if values.len() != m.dims.len() {
                    return Err(Error::partition(format!(
                        "partition key {text:?} has {} `|`-separated values, but {m} has {} \
                         dimensions",
                        values.len(),
                        m.dims.len()
                    )));
                }
                PartitionKey::Multi(
                    m.dimension_names()
                        .zip(values)
                        .map(|(name, value)| (name.to_owned(), value.to_owned()))
                        .collect(),
                )
            }
        };
        self.validate_key(&key)?;
        Ok(key)
    }

    /// The keys from `start` to `end` inclusive, in definition order; fails when either key is
    /// not a partition or `start` comes after `end`.
    ///
    /// Time windows are expanded arithmetically (no need for "now"); static keys are sliced
    /// from the key list; multi-dimensional keys are sliced from the product (time dimensions
    /// running to now, or further when a key lies beyond it).
    pub fn range(&self, start: &PartitionKey, end: &PartitionKey) -> Result<Vec<PartitionKey>> {
        self.range_until(start, end, Utc::now())
    }

    /// [`Self::range`] with an explicit "now", which only matters for a multi-dimensional
    /// definition with a time dimension without an end.
    pub fn range_until(
        &self,
        start: &PartitionKey,
        end: &PartitionKey,
        now: DateTime<Utc>,
    ) -> Result<Vec<PartitionKey>> {
        match self {
            Self::Static(s) => {
                let (a, b) = (self.single(start)?, self.single(end)?);
                Ok(s.range(a, b)?
                    .into_iter()
                    .map(PartitionKey::Single)
                    .collect())
            }
            Self::TimeWindow(t) => {
                let (a, b) = (self.single(start)?, self.single(end)?);
                Ok(t.range(a, b)?
                    .into_iter()
                    .map(PartitionKey::Single)
                    .collect())
            }
            Self::Multi(m) => m.range_until(start, end, now),
        }
    }

    /// True for a time window definition, or a multi-dimensional one with exactly one time
    /// dimension.
    pub fn is_time_based(&self) -> bool {
        match self {
            Self::Static(_) => false,
            Self::TimeWindow(_) => true,
            Self::Multi(m) => m.time_dimension().is_some(),
        }
    }

    /// The time window the keys span: from the start of the earliest key's window to the end of
    /// the latest's (over the time dimension for a multi-dimensional definition).
    ///
    /// Fails with [`crate::ErrorKind::InvalidContext`] and Dagster's message
    /// ([`NOT_TIME_PARTITIONED`]) when the definition is not time-based, or on an empty list;
    /// fails with a partition error on an invalid key.
    pub fn time_window(&self, keys: &[PartitionKey]) -> Result<TimeWindow> {
        match self {
            Self::Static(_) => Err(Error::invalid_context(NOT_TIME_PARTITIONED)),
            Self::TimeWindow(t) => {
                let singles = keys
                    .iter()
                    .map(|k| self.single(k))
                    .collect::<Result<Vec<&str>>>()?;
                t.time_window_for_keys(singles)
            }
            Self::Multi(m) => {
                let (name, t) = m
                    .time_dimension()
                    .ok_or_else(|| Error::invalid_context(NOT_TIME_PARTITIONED))?;
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    m.validate_key(key)?;
                    values.push(key.dimension(name).unwrap_or_default());
                }
                t.time_window_for_keys(values)
            }
        }
    }

    /// The string of a single key, or an error naming the definition.
    fn single<'k>(&self, key: &'k PartitionKey) -> Result<&'k str> {
        match key {
            PartitionKey::Single(s) => Ok(s),
            PartitionKey::Multi(_) => Err(Error::partition(self.multi_key_message(key))),
        }
    }

    fn multi_key_message(&self, key: &PartitionKey) -> String {
        format!("partition key `{key}` is multi-dimensional, but {self} takes one-dimensional keys")
    }

    fn check_key(&self, key: &PartitionKey) -> std::result::Result<(), String> {
        match (self, key) {
            (Self::Static(_) | Self::TimeWindow(_), PartitionKey::Multi(_)) => {
                Err(self.multi_key_message(key))
            }
            (Self::Static(s), PartitionKey::Single(k)) => s.check_key(k).map(|_| ()),
            (Self::TimeWindow(t), PartitionKey::Single(k)) => t.check_key(k).map(|_| ()),
            (Self::Multi(m), _) => m.check_key(key),
        }
    }
}

impl fmt::Display for PartitionsDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(s) => s.fmt(f),
            Self::TimeWindow(t) => t.fmt(f),
            Self::Multi(m) => m.fmt(f),
        }
    }
}

impl From<StaticPartitions> for PartitionsDefinition {
    fn from(def: StaticPartitions) -> Self {
        Self::Static(def)
    }
}

impl From<TimeWindowPartitions> for PartitionsDefinition {
    fn from(def: TimeWindowPartitions) -> Self {
        Self::TimeWindow(def)
    }
}

impl From<MultiPartitions> for PartitionsDefinition {
    fn from(def: MultiPartitions) -> Self {
        Self::Multi(def)
    }
}

// -------------------------------------------------------------------------------------------------
// Tests
// -------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn singles(keys: &[&str]) -> Vec<PartitionKey> {
        keys.iter().map(|k| PartitionKey::from(*k)).collect()
    }

    fn strings(keys: &[PartitionKey]) -> Vec<String> {
        keys.iter().map(ToString::to_string).collect()
    }

    fn mk(key: &[(&str, &str)]) -> PartitionKey {
        PartitionKey::multi(key.iter().copied()).unwrap()
    }

    /// `color` (static: blue, red) × `date` (daily 2024-01-01 .. 2024-01-04, exclusive).
    fn color_date() -> PartitionsDefinition {
        let date = TimeWindowPartitions::daily("2024-01-01")
            .unwrap()
            .with_end("2024-01-04")
            .unwrap();
        PartitionsDefinition::multi([
            ("date", date.into()),
            (
                "color",
                PartitionsDefinition::static_keys(["blue", "red"]).unwrap(),
            ),
        ])
        .unwrap()
    }

    fn partition_message(err: Error) -> String {
        assert_eq!(err.kind(), ErrorKind::Partition, "{err}");
        err.to_string()
    }

    #[test]
    fn default_formats() {
        let cases = [
            (Cadence::Hourly, "%Y-%m-%d-%H:%M"),
            (Cadence::Daily, "%Y-%m-%d"),
            (Cadence::Weekly, "%Y-%m-%d"),
            (Cadence::Monthly, "%Y-%m-%d"),
        ];
        for (cadence, fmt) in cases {
            assert_eq!(cadence.default_format(), fmt);
            assert_eq!(
                TimeWindowPartitions::new(cadence, "2024-01-01")
                    .unwrap()
                    .format(),
                fmt
            );
        }
    }

    #[test]
    fn keys_per_cadence_at_fixed_now() {
        let cases: Vec<(&str, TimeWindowPartitions, DateTime<Utc>, Vec<&str>)> = vec![
            (
                "hourly over a day boundary",
                TimeWindowPartitions::hourly("2024-01-01-22:00").unwrap(),
                utc(2024, 1, 2, 2, 30),
                vec![
                    "2024-01-01-22:00",
                    "2024-01-01-23:00",
                    "2024-01-02-00:00",
                    "2024-01-02-01:00",
                ],
            ),
            (
                "daily, the window ending exactly at now is complete",
                TimeWindowPartitions::daily("2024-01-01").unwrap(),
                utc(2024, 1, 4, 0, 0),
                vec!["2024-01-01", "2024-01-02", "2024-01-03"],
            ),
            (
                "weekly from a Wednesday starts on the next Sunday",
                TimeWindowPartitions::weekly("2024-01-03").unwrap(),
                utc(2024, 1, 29, 0, 0),
                vec!["2024-01-07", "2024-01-14", "2024-01-21"],
            ),
            (
                "monthly across a year boundary",
                TimeWindowPartitions::monthly("2023-11-01").unwrap(),
                utc(2024, 2, 15, 0, 0),
                vec!["2023-11-01", "2023-12-01", "2024-01-01"],
            ),
            (
                "daily start not aligned (RFC 3339)",
                TimeWindowPartitions::daily("2024-01-01T12:00:00Z").unwrap(),
                utc(2024, 1, 4, 0, 0),
                vec!["2024-01-02", "2024-01-03"],
            ),
            (
                "hourly start not aligned",
                TimeWindowPartitions::hourly("2024-01-01-10:30").unwrap(),
                utc(2024, 1, 1, 13, 0),
                vec!["2024-01-01-11:00", "2024-01-01-12:00"],
            ),
            (
                "monthly start not aligned",
                TimeWindowPartitions::monthly("2023-11-15").unwrap(),
                utc(2024, 2, 1, 0, 0),
                vec!["2023-12-01", "2024-01-01"],
            ),
            (
                "hourly start given as a date",
                TimeWindowPartitions::hourly("2024-01-01").unwrap(),
                utc(2024, 1, 1, 2, 0),
                vec!["2024-01-01-00:00", "2024-01-01-01:00"],
            ),
            (
                "nothing complete yet",
                TimeWindowPartitions::daily("2024-01-01").unwrap(),
                utc(2023, 6, 1, 0, 0),
                vec![],
            ),
        ];
        for (name, def, now, expected) in cases {
            assert_eq!(def.keys_until(now), expected, "{name}");
            let via_enum = PartitionsDefinition::from(def).keys_until(now);
            assert_eq!(strings(&via_enum), expected, "{name} (enum)");
        }
    }

    #[test]
    fn end_is_exclusive_and_ignores_now() {
        let def = TimeWindowPartitions::daily("2024-01-01")
            .unwrap()
            .with_end("2024-01-04")
            .unwrap();
        let expected = ["2024-01-01", "2024-01-02", "2024-01-03"];
        assert_eq!(def.keys_until(utc(2030, 1, 1, 0, 0)), expected);
        assert_eq!(def.keys_until(utc(2024, 1, 2, 0, 0)), expected);
        assert_eq!(def.end(), Some(utc(2024, 1, 4, 0, 0)));

        let hourly = TimeWindowPartitions::hourly("2024-01-01-00:00")
            .unwrap()
            .with_end("2024-01-01-03:00")
            .unwrap();
        assert_eq!(
            hourly.keys(),
            ["2024-01-01-00:00", "2024-01-01-01:00", "2024-01-01-02:00"]
        );

        // an end not on a window boundary keeps the window it cuts through
        let cut = TimeWindowPartitions::daily("2024-01-01")
            .unwrap()
            .with_end("2024-01-02T12:00:00Z")
            .unwrap();
        assert_eq!(cut.keys(), ["2024-01-01", "2024-01-02"]);
    }

    #[test]
    fn incomplete_window_excluded_without_end() {
        let def = TimeWindowPartitions::daily("2024-01-01").unwrap();
        assert_eq!(def.keys_until(utc(2024, 1, 2, 23, 59)), ["2024-01-01"]);
        assert_eq!(
            def.keys_until(utc(2024, 1, 3, 0, 0)),
            ["2024-01-01", "2024-01-02"]
        );
    }

    #[test]
    fn invalid_bounds_rejected() {
        assert!(TimeWindowPartitions::daily("yesterday").is_err());
        assert!(TimeWindowPartitions::daily("").is_err());
        let def = TimeWindowPartitions::daily("2024-01-05").unwrap();
        assert!(def.clone().with_end("2024-01-05").is_err());
        assert!(def.clone().with_end("2024-01-01").is_err());
        assert!(def.with_end("soon").is_err());
        assert!(
            TimeWindowPartitions::starting_at(Cadence::Daily, DateTime::<Utc>::MAX_UTC).is_err()
        );
    }

    #[test]
    fn dagster_example_window() {
        let def = PartitionsDefinition::daily("2024-01-01").unwrap();
        let keys = singles(&["2024-01-03", "2024-01-02", "2024-01-04"]);
        let window = def.time_window(&keys).unwrap();
        assert_eq!(
            window,
            TimeWindow {
                start: utc(2024, 1, 2, 0, 0),
                end: utc(2024, 1, 5, 0, 0)
            }
        );
        assert_eq!(
            window.to_string(),
            "[2024-01-02T00:00:00Z, 2024-01-05T00:00:00Z)"
        );
        assert!(window.contains(utc(2024, 1, 4, 23, 59)));
        assert!(!window.contains(utc(2024, 1, 5, 0, 0)));
        assert_eq!(window.duration(), TimeDelta::days(3));
    }

    #[test]
    fn window_for_key_and_key_for_time() {
        let cases = [
            (
                TimeWindowPartitions::hourly("2024-01-01").unwrap(),
                "2024-01-01-23:00",
                utc(2024, 1, 1, 23, 0),
                utc(2024, 1, 2, 0, 0),
            ),
            (
                TimeWindowPartitions::daily("2024-01-01").unwrap(),
                "2024-02-29",
                utc(2024, 2, 29, 0, 0),
                utc(2024, 3, 1, 0, 0),
            ),
            (
                TimeWindowPartitions::weekly("2024-01-01").unwrap(),
                "2024-01-07",
                utc(2024, 1, 7, 0, 0),
                utc(2024, 1, 14, 0, 0),
            ),
            (
                TimeWindowPartitions::monthly("2024-01-01").unwrap(),
                "2023-12-01",
                utc(2023, 12, 1, 0, 0),
                utc(2024, 1, 1, 0, 0),
            ),
        ];
        for (def, key, start, end) in cases {
            assert_eq!(
                def.window_for_key(key).unwrap(),
                TimeWindow { start, end },
                "{key}"
            );
            assert_eq!(def.key_for_time(start), key);
            assert_eq!(def.key_for_time(end - TimeDelta::seconds(1)), key);
        }
        // Saturday 2024-01-13 belongs to the week starting Sunday 2024-01-07
        let weekly = TimeWindowPartitions::weekly("2024-01-01").unwrap();
        assert_eq!(weekly.key_for_time(utc(2024, 1, 13, 18, 0)), "2024-01-07");
        assert_eq!(weekly.key_for_time(utc(2024, 1, 14, 0, 0)), "2024-01-14");

        let hourly = TimeWindowPartitions::hourly("2024-01-01").unwrap();
        let bad = [
            "2024-01-01-10:30",
            "2024-01-01",
            "garbage",
            "2024-1-1-10:00",
        ];
        for key in bad {
            partition_message(hourly.window_for_key(key).unwrap_err());
        }
        assert!(
            weekly
                .window_for_key("2024-01-08")
                .unwrap_err()
                .to_string()
                .contains("2024-01-07")
        );
    }

    #[test]
    fn range_static() {
        let def = PartitionsDefinition::static_keys(["a", "b", "c", "d", "e"]).unwrap();
        let r = def.range(&"b".into(), &"d".into()).unwrap();
        assert_eq!(r, singles(&["b", "c", "d"]));
        assert_eq!(
            def.range(&"c".into(), &"c".into()).unwrap(),
            singles(&["c"])
        );
    }

    #[test]
    fn range_time_is_arithmetic() {
        let hourly = PartitionsDefinition::hourly("2024-01-01-00:00").unwrap();
        let r = hourly
            .range(&"2024-01-01-00:00".into(), &"2024-01-01-23:00".into())
            .unwrap();
        assert_eq!(r.len(), 24);
        assert_eq!(r[0], "2024-01-01-00:00".into());
        assert_eq!(r[23], "2024-01-01-23:00".into());

        // far in the future: no "now" involved
        let daily = PartitionsDefinition::daily("2024-01-01").unwrap();
        let r = daily
            .range(&"2100-12-30".into(), &"2101-01-01".into())
            .unwrap();
        assert_eq!(r, singles(&["2100-12-30", "2100-12-31", "2101-01-01"]));

        let monthly = PartitionsDefinition::monthly("2023-01-01").unwrap();
        let r = monthly
            .range(&"2023-11-01".into(), &"2024-02-01".into())
            .unwrap();
        assert_eq!(
            r,
            singles(&["2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"])
        );
    }

    #[test]
    fn range_multi_in_product_order() {
        let def = color_date();
        let now = utc(2030, 1, 1, 0, 0);
        let r = def
            .range_until(
                &mk(&[("color", "blue"), ("date", "2024-01-02")]),
                &mk(&[("color", "red"), ("date", "2024-01-01")]),
                now,
            )
            .unwrap();
        assert_eq!(
            strings(&r),
            ["blue|2024-01-02", "blue|2024-01-03", "red|2024-01-01"]
        );

        // a time dimension without an end runs to the later key even past "now"
        let open = PartitionsDefinition::multi([
            ("date", PartitionsDefinition::daily("2024-01-01").unwrap()),
            (
                "color",
                PartitionsDefinition::static_keys(["blue", "red"]).unwrap(),
            ),
        ])
        .unwrap();
        let r = open
            .range_until(
                &mk(&[("color", "blue"), ("date", "2024-01-02")]),
                &mk(&[("color", "blue"), ("date", "2024-01-05")]),
                utc(2024, 1, 3, 0, 0),
            )
            .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[3].to_string(), "blue|2024-01-05");
    }

    #[test]
    fn range_errors() {
        let stat = PartitionsDefinition::static_keys(["a", "b", "c"]).unwrap();
        let daily = PartitionsDefinition::daily("2024-01-01").unwrap();
        let multi = color_date();
        let cases: Vec<(&PartitionsDefinition, PartitionKey, PartitionKey, &str)> = vec![
            (&stat, "c".into(), "a".into(), "comes after"),
            (&stat, "a".into(), "z".into(), "\"z\""),
            (
                &daily,
                "2024-01-05".into(),
                "2024-01-02".into(),
                "comes after",
            ),
            (
                &daily,
                "2023-12-31".into(),
                "2024-01-02".into(),
                "before the first partition",
            ),
            (
                &daily,
                "2024-01-01".into(),
                "2024-01-02T00".into(),
                "key format",
            ),
            (
                &daily,
                mk(&[("a", "1"), ("b", "2")]),
                "2024-01-02".into(),
                "multi-dimensional",
            ),
            (
                &multi,
                mk(&[("color", "red"), ("date", "2024-01-01")]),
                mk(&[("color", "blue"), ("date", "2024-01-03")]),
                "comes after",
            ),
            (
                &multi,
                mk(&[("color", "green"), ("date", "2024-01-01")]),
                mk(&[("color", "blue"), ("date", "2024-01-03")]),
                "green",
            ),
            (
                &multi,
                "blue|2024-01-01".into(),
                "red|2024-01-01".into(),
                "one-dimensional",
            ),
        ];
        for (def, start, end, needle) in cases {
            let err = def.range(&start, &end).unwrap_err();
            let text = partition_message(err);
            assert!(text.contains(needle), "{start:?}..{end:?}: {text}");
        }
    }

    #[test]
    fn validate_key_errors() {
        let stat = PartitionsDefinition::static_keys(["a", "b", "c", "d", "e", "f", "g"]).unwrap();
        let daily = PartitionsDefinition::TimeWindow(
            TimeWindowPartitions::daily("2024-01-01")
                .unwrap()
                .with_end("2024-02-01")
                .unwrap(),
        );
        let multi = color_date();
        assert!(stat.validate_key(&"c".into()).is_ok());
        assert!(daily.validate_key(&"2024-01-31".into()).is_ok());
        assert!(
            multi
                .validate_key(&mk(&[("color", "red"), ("date", "2024-01-03")]))
                .is_ok()
        );

        let cases: Vec<(&PartitionsDefinition, PartitionKey, Vec<&str>)> = vec![
            (
                &stat,
                "z".into(),
                vec!["\"z\"", "a, b, c, d, e, …", "(7 in all)"],
            ),
            (
                &stat,
                mk(&[("x", "a"), ("y", "b")]),
                vec!["`a|b`", "one-dimensional keys"],
            ),
            (
                &daily,
                "2024-02-01".into(),
                vec![
                    "\"2024-02-01\"",
                    "at or after the end",
                    "2024-01-01, 2024-01-02",
                ],
            ),
            (
                &daily,
                "2023-12-31".into(),
                vec!["before the first partition \"2024-01-01\""],
            ),
            (
                &daily,
                "01/02/2024".into(),
                vec!["\"01/02/2024\"", "%Y-%m-%d", "2024-01-01, 2024-01-02"],
            ),
            (
                &daily,
                "2024-1-2".into(),
                vec!["canonical", "\"2024-01-02\""],
            ),
            (
                &multi,
                "red|2024-01-01".into(),
                vec!["one-dimensional", "[\"color\", \"date\"]"],
            ),
            (
                &multi,
                mk(&[("color", "red"), ("day", "2024-01-01")]),
                vec!["[\"color\", \"day\"]", "[\"color\", \"date\"]"],
            ),
            (
                &multi,
                mk(&[("color", "red"), ("date", "2024-01-04")]),
                vec!["dimension `date`", "at or after the end"],
            ),
            (
                &multi,
                mk(&[("color", "pink"), ("date", "2024-01-01")]),
                vec!["dimension `color`", "\"pink\"", "blue, red"],
            ),
        ];
        for (def, key, needles) in cases {
            let text = partition_message(def.validate_key(&key).unwrap_err());
            for needle in needles {
                assert!(text.contains(needle), "{key:?}: {needle:?} not in {text}");
            }
        }
        let hourly = PartitionsDefinition::hourly("2024-01-01").unwrap();
        let text = partition_message(hourly.validate_key(&"2024-01-01-10:30".into()).unwrap_err());
        assert!(
            text.contains("does not start a window") && text.contains("2024-01-01-10:00"),
            "{text}"
        );
    }

    #[test]
    fn parse_key_reads_string_forms() {
        let multi = color_date();
        assert_eq!(
            multi.parse_key("red|2024-01-02").unwrap(),
            mk(&[("color", "red"), ("date", "2024-01-02")])
        );
        assert!(multi.parse_key("red").is_err());
        assert!(multi.parse_key("2024-01-02|red").is_err());
        let daily = PartitionsDefinition::daily("2024-01-01").unwrap();
        assert_eq!(daily.parse_key("2024-01-02").unwrap(), "2024-01-02".into());
        assert!(daily.parse_key("2024-01-02|x").is_err());
    }

    #[test]
    fn multi_with_three_dimensions() {
        let def = MultiPartitions::new([
            (
                "size",
                PartitionsDefinition::static_keys(["s", "l"]).unwrap(),
            ),
            (
                "color",
                PartitionsDefinition::static_keys(["red", "blue"]).unwrap(),
            ),
            (
                "date",
                TimeWindowPartitions::daily("2024-01-01")
                    .unwrap()
                    .with_end("2024-01-03")
                    .unwrap()
                    .into(),
            ),
        ])
        .unwrap();
        let names: Vec<&str> = def.dimension_names().collect();
        assert_eq!(names, ["color", "date", "size"]);
        assert_eq!(def.dimensions().len(), 3);
        let keys = def.keys();
        assert_eq!(keys.len(), 8);
        assert_eq!(
            strings(&keys),
            [
                "red|2024-01-01|s",
                "red|2024-01-01|l",
                "red|2024-01-02|s",
                "red|2024-01-02|l",
                "blue|2024-01-01|s",
                "blue|2024-01-01|l",
                "blue|2024-01-02|s",
                "blue|2024-01-02|l",
            ]
        );
        assert_eq!(keys[0].dimension("size"), Some("s"));
        let (name, time) = def.time_dimension().unwrap();
        assert_eq!((name, time.cadence()), ("date", Cadence::Daily));

        let as_def = PartitionsDefinition::from(def);
        let r = as_def.range(&keys[2], &keys[5]).unwrap();
        assert_eq!(r, keys[2..=5].to_vec());
        for key in &keys {
            as_def.validate_key(key).unwrap();
        }
        let window = as_def.time_window(&keys[1..4]).unwrap();
        assert_eq!(
            window,
            TimeWindow {
                start: utc(2024, 1, 1, 0, 0),
                end: utc(2024, 1, 3, 0, 0)
            }
        );
    }

    #[test]
    fn multi_rejections() {
        let s = || PartitionsDefinition::static_keys(["a", "b"]).unwrap();
        let d = || PartitionsDefinition::daily("2024-01-01").unwrap();
        type Case = (
            &'static str,
            Vec<(&'static str, PartitionsDefinition)>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            ("no dimension", vec![], "two or more dimensions, got 0"),
            (
                "one dimension",
                vec![("a", s())],
                "two or more dimensions, got 1",
            ),
            (
                "duplicate names",
                vec![("a", s()), ("b", d()), ("a", d())],
                "`a` twice",
            ),
            ("empty name", vec![("", s()), ("b", d())], "empty name"),
            (
                "nested",
                vec![("a", s()), ("b", color_date())],
                "cannot be nested",
            ),
            (
                "pipe",
                vec![
                    ("a", PartitionsDefinition::static_keys(["x|y"]).unwrap()),
                    ("b", d()),
                ],
                "'|'",
            ),
            (
                "open bracket",
                vec![
                    ("a", PartitionsDefinition::static_keys(["x["]).unwrap()),
                    ("b", d()),
                ],
                "'['",
            ),
            (
                "close bracket",
                vec![
                    ("a", PartitionsDefinition::static_keys(["]"]).unwrap()),
                    ("b", d()),
                ],
                "']'",
            ),
            (
                "comma",
                vec![
                    (
                        "a",
                        PartitionsDefinition::static_keys(["ok", "x,y"]).unwrap(),
                    ),
                    ("b", d()),
                ],
                "','",
            ),
            (
                "time format with a pipe",
                vec![
                    ("a", s()),
                    (
                        "b",
                        TimeWindowPartitions::daily("2024-01-01")
                            .unwrap()
                            .with_format("%Y|%m|%d")
                            .unwrap()
                            .into(),
                    ),
                ],
                "'|'",
            ),
        ];
        for (name, dims, needle) in cases {
            let text = partition_message(MultiPartitions::new(dims).unwrap_err());
            assert!(text.contains(needle), "{name}: {text}");
        }
    }

    #[test]
    fn static_rejections() {
        assert!(StaticPartitions::new(Vec::<String>::new()).is_err());
        assert!(
            StaticPartitions::new(["a", ""])
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            StaticPartitions::new(["a", "b", "a"])
                .unwrap_err()
                .to_string()
                .contains("\"a\" twice")
        );
        // forbidden characters are fine outside a multi-dimensional definition
        assert!(StaticPartitions::new(["a|b", "[c]"]).is_ok());
    }

    #[test]
    fn time_window_for_multi_and_errors() {
        let multi = color_date();
        let keys = [
            mk(&[("color", "red"), ("date", "2024-01-03")]),
            mk(&[("color", "blue"), ("date", "2024-01-02")]),
        ];
        assert!(multi.is_time_based());
        let window = multi.time_window(&keys).unwrap();
        assert_eq!(
            window.to_string(),
            "[2024-01-02T00:00:00Z, 2024-01-04T00:00:00Z)"
        );

        let stat = PartitionsDefinition::static_keys(["a"]).unwrap();
        assert!(!stat.is_time_based());
        let err = stat.time_window(&singles(&["a"])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidContext);
        assert_eq!(
            err.to_string(),
            "Tried to get asset partitions time window for an input that corresponds to a \
             partitioned asset that is not time-partitioned."
        );

        let two_times = PartitionsDefinition::multi([
            ("a", PartitionsDefinition::daily("2024-01-01").unwrap()),
            ("b", PartitionsDefinition::hourly("2024-01-01").unwrap()),
        ])
        .unwrap();
        assert!(!two_times.is_time_based());
        let key = mk(&[("a", "2024-01-01"), ("b", "2024-01-01-00:00")]);
        assert_eq!(
            two_times.time_window(&[key]).unwrap_err().kind(),
            ErrorKind::InvalidContext
        );

        let no_time = PartitionsDefinition::multi([
            ("a", PartitionsDefinition::static_keys(["x"]).unwrap()),
            ("b", PartitionsDefinition::static_keys(["y"]).unwrap()),
        ])
        .unwrap();
        assert!(!no_time.is_time_based());
        assert_eq!(
            no_time
                .time_window(&[mk(&[("a", "x"), ("b", "y")])])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidContext
        );

        let daily = PartitionsDefinition::daily("2024-01-01").unwrap();
        assert!(daily.is_time_based());
        assert_eq!(
            daily.time_window(&[]).unwrap_err().kind(),
            ErrorKind::InvalidContext
        );
        assert_eq!(
            multi.time_window(&[]).unwrap_err().kind(),
            ErrorKind::InvalidContext
        );
        assert_eq!(
            daily
                .time_window(&singles(&["2023-01-01"]))
                .unwrap_err()
                .kind(),
            ErrorKind::Partition
        );
        assert_eq!(
            multi
                .time_window(&singles(&["2024-01-01"]))
                .unwrap_err()
                .kind(),
            ErrorKind::Partition
        );
    }

    #[test]
    fn custom_format_round_trip() {
        let def = TimeWindowPartitions::daily("2024-01-01")
            .unwrap()
            .with_format("%Y%m%d")
            .unwrap();
        assert_eq!(
            def.keys_until(utc(2024, 1, 3, 0, 0)),
            ["20240101", "20240102"]
        );
        let w = def.window_for_key("20240102").unwrap();
        assert_eq!(w.start, utc(2024, 1, 2, 0, 0));
        assert_eq!(def.key_for_time(w.start), "20240102");
        assert!(def.window_for_key("2024-01-02").is_err());

        // a monthly format without a day
        let monthly = TimeWindowPartitions::monthly("2023-12-01")
            .unwrap()
            .with_format("%Y-%m")
            .unwrap();
        assert_eq!(
            monthly.keys_until(utc(2024, 2, 1, 0, 0)),
            ["2023-12", "2024-01"]
        );
        assert_eq!(
            monthly.window_for_key("2024-01").unwrap().end,
            utc(2024, 2, 1, 0, 0)
        );

        // an hourly format with an offset
        let hourly = TimeWindowPartitions::hourly("2024-01-01")
            .unwrap()
            .with_format("%Y-%m-%dT%H%z")
            .unwrap();
        assert_eq!(
            hourly.key_for_time(utc(2024, 1, 1, 5, 10)),
            "2024-01-01T05+0000"
        );
        assert_eq!(
            hourly.window_for_key("2024-01-01T05+0000").unwrap().start,
            utc(2024, 1, 1, 5, 0)
        );

        let rejected = [
            (Cadence::Hourly, "%Y-%m-%d"),
            (Cadence::Daily, "%Y-%m"),
            (Cadence::Daily, "%Q"),
            (Cadence::Daily, ""),
            (Cadence::Daily, "static"),
        ];
        for (cadence, fmt) in rejected {
            let def = TimeWindowPartitions::new(cadence, "2024-01-01").unwrap();
            partition_message(def.with_format(fmt).unwrap_err());
        }
    }

    #[test]
    fn serde_json_forms() {
        let stat = PartitionsDefinition::static_keys(["a", "b"]).unwrap();
        assert_eq!(
            serde_json::to_string(&stat).unwrap(),
            r#"{"type":"static","keys":["a","b"]}"#
        );

        let daily = PartitionsDefinition::daily("2024-01-01").unwrap();
        assert_eq!(
            serde_json::to_string(&daily).unwrap(),
            r#"{"type":"time_window","cadence":"daily","start":"2024-01-01","end":null,"format":"%Y-%m-%d"}"#
        );

        let hourly: PartitionsDefinition = TimeWindowPartitions::hourly("2024-01-01-10:30")
            .unwrap()
            .with_end("2024-01-02-00:00")
            .unwrap()
            .into();
        assert_eq!(
            serde_json::to_string(&hourly).unwrap(),
            r#"{"type":"time_window","cadence":"hourly","start":"2024-01-01-10:30","end":"2024-01-02-00:00","format":"%Y-%m-%d-%H:%M"}"#
        );

        // a start the key format cannot hold is written as RFC 3339
        let odd = PartitionsDefinition::daily("2024-01-01T06:30:00Z").unwrap();
        let json = serde_json::to_value(&odd).unwrap();
        assert_eq!(json["start"], "2024-01-01T06:30:00Z");

        let multi = color_date();
        let json = serde_json::to_value(&multi).unwrap();
        assert_eq!(json["type"], "multi");
        assert_eq!(
            json["dimensions"]["color"]["keys"],
            serde_json::json!(["blue", "red"])
        );
        assert_eq!(json["dimensions"]["date"]["end"], "2024-01-04");

        let custom: PartitionsDefinition = TimeWindowPartitions::weekly("2024-01-03")
            .unwrap()
            .with_format("%d.%m.%Y")
            .unwrap()
            .into();
        for def in [stat, daily, hourly, odd, multi, custom] {
            let text = serde_json::to_string(&def).unwrap();
            let back: PartitionsDefinition = serde_json::from_str(&text).unwrap();
            assert_eq!(back, def, "{text}");
        }
    }

    #[test]
    fn serde_json_accepts_config_forms() {
        let def: PartitionsDefinition = serde_json::from_str(
            r#"{"type":"time_window","cadence":"monthly","start":"2023-11-15"}"#,
        )
        .unwrap();
        assert_eq!(
            strings(&def.keys_until(utc(2024, 1, 1, 0, 0))),
            ["2023-12-01"]
        );

        let def: PartitionsDefinition = serde_json::from_str(
            r#"{"type":"time_window","cadence":"daily","start":"20240101","format":"%Y%m%d","end":"2024-01-03T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(strings(&def.keys()), ["20240101", "20240102"]);

        let def: PartitionsDefinition = serde_json::from_str(
            r#"{"type":"multi","dimensions":{
                "date":{"type":"time_window","cadence":"daily","start":"2024-01-01","end":"2024-01-03"},
                "color":{"type":"static","keys":["red","blue"]}}}"#,
        )
        .unwrap();
        assert_eq!(
            strings(&def.keys()),
            [
                "red|2024-01-01",
                "red|2024-01-02",
                "blue|2024-01-01",
                "blue|2024-01-02"
            ]
        );
    }

    #[test]
    fn serde_json_rejects_invalid() {
        let bad = [
            r#"{"type":"static","keys":[]}"#,
            r#"{"type":"static","keys":["a","a"]}"#,
            r#"{"type":"static","keys":["a",""]}"#,
            r#"{"type":"static","keys":["a"],"extra":1}"#,
            r#"{"type":"static"}"#,
            r#"{"type":"dynamic","keys":["a"]}"#,
            r#"{"keys":["a"]}"#,
            r#"{"type":"time_window","cadence":"yearly","start":"2024-01-01"}"#,
            r#"{"type":"time_window","cadence":"daily","start":"someday"}"#,
            r#"{"type":"time_window","cadence":"daily","start":"2024-01-05","end":"2024-01-01"}"#,
            r#"{"type":"time_window","cadence":"hourly","start":"2024-01-01","format":"%Y-%m-%d"}"#,
            r#"{"type":"time_window","cadence":"daily","start":"2024-01-01","format":"%Q"}"#,
            r#"{"type":"multi","dimensions":{"a":{"type":"static","keys":["x"]}}}"#,
            r#"{"type":"multi","dimensions":{"a":{"type":"static","keys":["x,y"]},"b":{"type":"static","keys":["z"]}}}"#,
            r#"{"type":"multi","dimensions":{"a":{"type":"static","keys":["x"]},"b":{"type":"multi","dimensions":{}}}}"#,
            r#"{"type":"multi","dimensions":{"a":{"type":"static","keys":["x"]},"":{"type":"static","keys":["z"]}}}"#,
        ];
        for text in bad {
            assert!(
                serde_json::from_str::<PartitionsDefinition>(text).is_err(),
                "{text}"
            );
        }
        let err =
            serde_json::from_str::<PartitionsDefinition>(r#"{"type":"static","keys":["a","a"]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn display_names_the_definition() {
        let def = TimeWindowPartitions::daily("2024-01-01")
            .unwrap()
            .with_end("2024-02-01")
            .unwrap();
        assert_eq!(
            def.to_string(),
            "daily partitions starting 2024-01-01 and ending before 2024-02-01 (key format \"%Y-%m-%d\")"
        );
        assert_eq!(Cadence::Weekly.to_string(), "weekly");
        let multi = color_date();
        assert!(
            multi
                .to_string()
                .starts_with("multi-dimensional partitions with dimensions `color`")
        );
    }
}
