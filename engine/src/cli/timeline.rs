//! The lines of a `simulate` timeline, kept in one file per day while they are produced and
//! printed day by day in time order: memory holds one day's lines, not the whole period's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
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
                let f = BufWriter::new(File::create(self.dir.join(day.to_string()))?);
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

    /// Prints every line in time order (then key order) through `print`.
    pub(crate) fn drain(mut self, mut print: impl FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()> {
        let buckets = std::mem::take(&mut self.buckets);
        for (day, mut writer) in buckets {
            writer.flush()?;
            drop(writer);
            let path = self.dir.join(day.to_string());
            let mut bytes = Vec::new();
            BufReader::new(File::open(&path)?).read_to_end(&mut bytes)?;
            let mut rows = parse(&bytes);
            rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (_, _, line) in rows {
                print(line)?;
            }
            std::fs::remove_file(&path)?;
        }
        Ok(())
    }
}

/// The (at, key, line) records of a bucket file.
fn parse(bytes: &[u8]) -> Vec<(i64, &str, &str)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let take = |rest: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head.to_vec())
    };
    while !rest.is_empty() {
        let Some(at) = take(&mut rest, 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes) else { break };
        let mut texts = [""; 2];
        for text in &mut texts {
            let Some(len) = take(&mut rest, 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) else {
                return out;
            };
            let Some((head, tail)) = rest.split_at_checked(len as usize) else { return out };
            rest = tail;
            *text = std::str::from_utf8(head).unwrap_or_default();
        }
        out.push((at, texts[0], texts[1]));
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
            lines.push(l.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(lines, ["first\\nwith a newline", "second", "é fourth… no: third by key", "third"]);
        assert!(!dir.exists(), "the temporary directory is removed");
    }
}
