//! Splits a byte stream into JSON values without parsing them: one per line for JSON lines, or a
//! whole pretty-printed document, each with the line it starts on. Memory is bounded by the
//! largest value (capped by `max_bytes`), never by the stream.
//!
//! Broken input never swallows its neighbours: a line break inside a string ends the value (JSON
//! strings cannot hold one), and an unindented `{` or `[` at the start of a line while a value is
//! still open starts a new value, reporting the open one as incomplete, unless it can continue the
//! open value (an element after `[` or `,` inside an array, or a member's value after `:`).
//!
//! A UTF-8 byte order mark at the start of the stream is skipped.

use std::io::{self, BufRead};

/// One piece of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A value's bytes (maybe invalid JSON: the parser says why).
    Value {
        /// The line it starts on (1-based).
        line: u64,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A value larger than the limit, skipped.
    TooLarge {
        /// The line it starts on.
        line: u64,
        /// Its size in bytes.
        size: u64,
    },
    /// A value still open when a new one started or the stream ended.
    Incomplete {
        /// The line it starts on.
        line: u64,
        /// True when the stream ended (a truncated file).
        at_end: bool,
    },
}

/// The splitter's state between reads.
pub struct Splitter<R> {
    reader: R,
    max_bytes: usize,
    line: u64,
    at_line_start: bool,
    current: Option<Open>,
    ready: std::collections::VecDeque<Piece>,
    bytes_read: u64,
    /// Bytes of a UTF-8 byte order mark skipped at the start of the stream.
    bom: usize,
    done: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Nesting deeper than this is not tracked by kind (serde_json refuses it anyway), so that memory
/// stays bounded by `max_bytes` even for `[[[[…`.
const MAX_TRACKED_DEPTH: u32 = 128;

struct Open {
    line: u64,
    bytes: Vec<u8>,
    size: u64,
    /// `{`/`[` nesting; a value that does not start with one runs to the end of its line.
    structural: bool,
    depth: u32,
    /// The open `{`/`[`, innermost last (the first [`MAX_TRACKED_DEPTH`]).
    containers: Vec<u8>,
    /// The last byte outside strings that is not white space.
    last: u8,
    in_string: bool,
    escaped: bool,
}

impl Open {
    fn new(line: u64, structural: bool) -> Self {
        Self {
            line,
            bytes: Vec::new(),
            size: 0,
            structural,
            depth: 0,
            containers: Vec::new(),
            last: 0,
            in_string: false,
            escaped: false,
        }
    }
}

impl<R: BufRead> Splitter<R> {
    /// Splits `reader`, refusing values over `max_bytes`.
    pub fn new(reader: R, max_bytes: usize) -> Self {
        Self {
            reader,
            max_bytes,
            line: 1,
            at_line_start: true,
            current: None,
            ready: std::collections::VecDeque::new(),
            bytes_read: 0,
            bom: 0,
            done: false,
        }
    }

    /// Bytes consumed so far (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn finish(&mut self, open: Open) {
        let piece = if open.size > self.max_bytes as u64 {
            Piece::TooLarge { line: open.line, size: open.size }
        } else {
            Piece::Value { line: open.line, bytes: open.bytes }
        };
        self.ready.push_back(piece);
    }

    fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            let Some(mut open) = self.current.take() else {
                // Between values: skip white space, counting lines.
                let b = chunk[i];
                if self.bytes_read + i as u64 == self.bom as u64 && BOM.get(self.bom) == Some(&b) {
                    self.bom += 1;
                    i += 1;
                    continue;
                }
                if b.is_ascii_whitespace() {
                    self.newline_if(b);
                    i += 1;
                    continue;
                }
                self.current = Some(Open::new(self.line, b == b'{' || b == b'['));
                continue;
            };
            // Inside a value: a tight scan over the slice, state in locals.
            let start = i;
            let mut ended = false;
            let mut restart = false;
            let (mut depth, mut in_string, mut escaped, mut last) =
                (open.depth, open.in_string, open.escaped, open.last);
            let mut containers = std::mem::take(&mut open.containers);
            while i < chunk.len() {
                let b = chunk[i];
                let line_start = std::mem::replace(&mut self.at_line_start, false);
                if b == b'\n' {
                    self.line += 1;
                    self.at_line_start = true;
                    if !open.structural || in_string {
                        // The line break ends the value; it is counted, so step over it.
                        ended = true;
                        i += 1;
                        break;
                    }
                } else if line_start
                    && open.structural
                    && depth > 0
                    && !in_string
                    && (b == b'{' || b == b'[')
                    && !(last == b'[' || last == b':' || (last == b',' && containers.last() == Some(&b'[')))
                {
                    restart = true;
                    break;
                }
                i += 1;
                if !open.structural {
                    continue;
                }
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                if !b.is_ascii_whitespace() {
                    last = b;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        if depth <= MAX_TRACKED_DEPTH {
                            containers.push(b);
                        }
                    }
                    b'}' | b']' => {
                        if depth <= MAX_TRACKED_DEPTH {
                            containers.pop();
                        }
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            ended = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = if ended && i > start && chunk[i - 1] == b'\n' { i - 1 } else { i };
            self.append(&mut open, &chunk[start..end]);
            (open.depth, open.in_string, open.escaped, open.last, open.containers) =
                (depth, in_string, escaped, last, containers);
            if restart {
                // An unindented `{` while a value is open: the open one is incomplete.
                self.ready.push_back(Piece::Incomplete { line: open.line, at_end: false });
                self.at_line_start = true;
                continue;
            }
            if ended {
                self.finish(open);
            } else {
                self.current = Some(open);
            }
        }
    }

    fn newline_if(&mut self, b: u8) {
        if b == b'\n' {
            self.line += 1;
            self.at_line_start = true;
        } else {
            self.at_line_start = false;
        }
    }

    fn append(&self, open: &mut Open, bytes: &[u8]) {
        open.size += bytes.len() as u64;
        if open.size <= self.max_bytes as u64 {
            open.bytes.extend_from_slice(bytes);
        } else if !open.bytes.is_empty() {
            open.bytes = Vec::new();
        }
    }

    /// The next piece, or `None` at the end of the stream.
    ///
    /// # Errors
    /// The reader's I/O error.
    pub fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                return Ok(Some(piece));
            }
            if self.done {
                return Ok(None);
            }
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                self.done = true;
                if let Some(open) = self.current.take() {
                    if open.structural && open.depth > 0 {
                        self.ready.push_back(Piece::Incomplete { line: open.line, at_end: true });
                    } else {
                        self.finish(open);
                    }
                }
                continue;
            }
            let chunk = chunk.to_vec();
            let n = chunk.len();
            self.feed(&chunk);
            self.reader.consume(n);
            self.bytes_read += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, max: usize) -> Vec<Piece> {
        let mut s = Splitter::new(io::BufReader::with_capacity(7, text.as_bytes()), max);
        let mut out = Vec::new();
        while let Some(p) = s.next_piece().unwrap() {
            out.push(p);
        }
        out
    }

    fn value(line: u64, text: &str) -> Piece {
        Piece::Value { line, bytes: text.as_bytes().to_vec() }
    }

    #[test]
    fn splits_json_lines_with_their_line_numbers() {
        let out = split("{\"a\":1}\n\n{\"b\":\"}{\"}\n", 100);
        assert_eq!(out, vec![value(1, "{\"a\":1}"), value(3, "{\"b\":\"}{\"}")]);
    }

    #[test]
    fn keeps_a_pretty_printed_document_whole() {
        let doc = "{\n  \"Invoice\": {\n    \"Id\": \"1\"\n  }\n}\n{\"id\":2}";
        let out = split(doc, 100);
        assert_eq!(out, vec![value(1, "{\n  \"Invoice\": {\n    \"Id\": \"1\"\n  }\n}"), value(6, "{\"id\":2}")]);
    }

    #[test]
    fn a_line_with_a_missing_brace_does_not_swallow_the_next() {
        let out = split("{\"id\":1\n{\"id\":2}\n", 100);
        assert_eq!(out, vec![Piece::Incomplete { line: 1, at_end: false }, value(2, "{\"id\":2}")]);
    }

    #[test]
    fn an_unterminated_string_ends_at_its_line() {
        let out = split("{\"id\":\"1}\n{\"id\":2}\n", 100);
        assert_eq!(out, vec![value(1, "{\"id\":\"1}"), value(2, "{\"id\":2}")]);
    }

    #[test]
    fn a_truncated_file_is_reported_at_the_end() {
        let out = split("{\"id\":1}\n{\"id\":2, \"amount\": \"1", 100);
        assert_eq!(out, vec![value(1, "{\"id\":1}"), Piece::Incomplete { line: 2, at_end: true }]);
        let out = split("{\"id\":1}\n{\"id\":2, \"lines\": [", 100);
        assert_eq!(out[1], Piece::Incomplete { line: 2, at_end: true });
    }

    #[test]
    fn oversized_values_are_skipped_and_measured() {
        let big = format!("{{\"id\":\"{}\"}}", "x".repeat(50));
        let out = split(&format!("{big}\n{{\"id\":2}}\n"), 20);
        assert_eq!(out, vec![Piece::TooLarge { line: 1, size: big.len() as u64 }, value(2, "{\"id\":2}")]);
    }

    #[test]
    fn bare_words_run_to_the_end_of_their_line() {
        let out = split("not json\n{\"id\":2}", 100);
        assert_eq!(out, vec![value(1, "not json"), value(2, "{\"id\":2}")]);
    }

    fn split_with_capacity(text: &[u8], capacity: usize, max: usize) -> Vec<Piece> {
        let mut s = Splitter::new(io::BufReader::with_capacity(capacity, text), max);
        let mut out = Vec::new();
        while let Some(p) = s.next_piece().unwrap() {
            out.push(p);
        }
        out
    }

    #[test]
    fn a_utf8_byte_order_mark_at_the_start_is_skipped() {
        for capacity in [1, 2, 3, 7, 64] {
            let out = split_with_capacity(b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n", capacity, 100);
            assert_eq!(out, vec![value(1, "{\"a\":1}"), value(2, "{\"b\":2}")], "capacity {capacity}");
            let out = split_with_capacity(b"\xEF\xBB\xBF{\n  \"a\": 1\n}\n", capacity, 100);
            assert_eq!(out, vec![value(1, "{\n  \"a\": 1\n}")], "capacity {capacity}");
        }
    }

    #[test]
    fn an_array_of_unindented_objects_is_one_document() {
        let doc = "[\n{\"id\":1},\n{\"id\":2}\n]\n{\"id\":3}\n";
        let out = split(doc, 100);
        assert_eq!(out, vec![value(1, "[\n{\"id\":1},\n{\"id\":2}\n]"), value(5, "{\"id\":3}")]);
        // Inside an object, a `{` after a comma cannot continue it: still a new record.
        let out = split("{\"id\":1,\n{\"id\":2}\n", 100);
        assert_eq!(out, vec![Piece::Incomplete { line: 1, at_end: false }, value(2, "{\"id\":2}")]);
    }

    #[test]
    fn crlf_multibyte_and_escapes_across_chunks() {
        let text = "{\"a\":\"é日\\\"}\\\\\"}\r\n\r\n{\"b\":\r\n2} {\"c\":3}\r\n";
        for capacity in [1, 2, 3, 5, 64] {
            let out = split_with_capacity(text.as_bytes(), capacity, 100);
            assert_eq!(
                out,
                vec![value(1, "{\"a\":\"é日\\\"}\\\\\"}"), value(3, "{\"b\":\r\n2}"), value(4, "{\"c\":3}")],
                "capacity {capacity}"
            );
        }
        assert_eq!(split("", 100), vec![]);
        assert_eq!(split(" \r\n\t\n", 100), vec![]);
    }
}
