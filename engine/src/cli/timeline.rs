//! The lines of a `simulate` timeline, kept in one file per day while they are produced and
//! printed day by day in time order: memory holds one day's lines, not the whole period's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

/// One line of the timeline and what orders it.
pub(crate) struct Row {
    pub(crate) at: DateTime<Utc>,
    pub(crate) key: String,
    pub(crate) line: String,
}

/// Day buckets in a private temporary directory, removed when done (or dropped).
pub(crate) struct Timeline {
    dir: PathBuf,
    buckets: BTreeMap<NaiveDate, BufWriter<File>>,
    count: u64,
}

impl Timeline {
    /// A new, empty timeline.
    pub(crate) fn new() -> std::io::Result<Self> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("invoiceflow-simulate-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, buckets: BTreeMap::new(), count: 0 })
    }

    /// Lines so far.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Adds a line.
    pub(crate) fn push(&mut self, row: &Row) -> std::io::Result<()> {
        let day = row.at.date_naive();
        let file = match self.buckets.get_mut(&day) {
            Some(f) => f,
            None => {
                let f = BufWriter::with_capacity(1 << 16, File::create(self.dir.join(day.to_string()))?);
                self.buckets.entry(day).or_insert(f)
            }
        };
        file.write_all(&row.at.timestamp_micros().to_le_bytes())?;
        for text in [&row.key, &row.line] {
            file.write_all(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes())?;
            file.write_all(text.as_bytes())?;
        }
        self.count += 1;
        Ok(())
    }

    /// Prints every line (as written: UTF-8) in time order, then key order, through `print`. The
    /// next day is read and sorted on another thread while one is printed.
    pub(crate) fn drain(mut self, mut print: impl FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        let mut paths = Vec::new();
        for (day, mut writer) in std::mem::take(&mut self.buckets) {
            writer.flush()?;
            drop(writer);
            paths.push(self.dir.join(day.to_string()));
        }
        std::thread::scope(|scope| {
            let (days, ready) = std::sync::mpsc::sync_channel::<std::io::Result<Day>>(1);
            scope.spawn(move || {
                for path in paths {
                    let day = Day::load(&path);
                    let failed = day.is_err();
                    if days.send(day).is_err() || failed {
                        break;
                    }
                }
            });
            for day in ready {
                let day = day?;
                for line in day.lines() {
                    print(line)?;
                }
            }
            Ok(())
        })
    }
}

/// One day's lines, sorted: the bucket's bytes and, in print order, where each line is.
struct Day {
    bytes: Vec<u8>,
    order: Vec<(i64, Range<usize>, Range<usize>)>,
}

impl Day {
    /// Reads, sorts and removes bucket file `path`.
    fn load(path: &std::path::Path) -> std::io::Result<Self> {
        let mut bytes = Vec::new();
        BufReader::new(File::open(path)?).read_to_end(&mut bytes)?;
        std::fs::remove_file(path)?;
        let mut order = parse(&bytes);
        order.sort_unstable_by(|a, b| (a.0, &bytes[a.1.clone()]).cmp(&(b.0, &bytes[b.1.clone()])));
        Ok(Self { bytes, order })
    }

    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.order.iter().map(|(_, _, line)| &self.bytes[line.clone()])
    }
}

/// The (at, key, line) records of a bucket file, as byte ranges.
fn parse(bytes: &[u8]) -> Vec<(i64, Range<usize>, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let number = |at: usize, n: usize| bytes.get(at..at + n);
    while let Some(stamp) = number(at, 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes) {
        at += 8;
        let mut texts = [0..0, 0..0];
        for text in &mut texts {
            let Some(len) = number(at, 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) else { return out };
            let start = at + 4;
            let end = start + len as usize;
            if end > bytes.len() {
                return out;
            }
            *text = start..end;
            at = end;
        }
        let [key, line] = texts;
        out.push((stamp, key, line));
    }
    out
}

impl Drop for Timeline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_time_then_key_order_across_days() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let mut t = Timeline::new().unwrap();
        for (when, key, line) in [
            ("2026-11-26T14:00:00Z", "b", "third"),
            ("2026-11-25T14:00:00Z", "z", "second"),
            ("2026-11-25T08:00:00Z", "k", "first\\nwith a newline"),
            ("2026-11-26T14:00:00Z", "a", "é fourth… no: third by key"),
        ] {
            t.push(&Row { at: at(when), key: key.into(), line: line.into() }).unwrap();
        }
        assert_eq!(t.len(), 4);
        let dir = t.dir.clone();
        let mut lines = Vec::new();
        t.drain(|l| {
            lines.push(String::from_utf8(l.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(lines, ["first\\nwith a newline", "second", "é fourth… no: third by key", "third"]);
        assert!(!dir.exists(), "the temporary directory is removed");
    }
}
