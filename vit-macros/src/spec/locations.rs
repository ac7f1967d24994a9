//! Where each key and value of a spec file is: serde_yaml keeps no spans, so a second pass
//! with a marked YAML parser records them, keyed by serde_yaml's own path syntax
//! (`vit.heads`, `cnn.layers[3].conv.kernel`).

use crate::diagnostic::{Diagnostic, Span};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Spans of every key and value of one YAML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    entries: HashMap<String, Entry>,
    /// Keys seen a second time in the same mapping, in file order.
    duplicates: Vec<(String, Span)>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    key: Option<Span>,
    value: Option<Span>,
}

impl Locations {
    /// Indexes `text`; fails with the parser's error if it is not YAML.
    pub fn build(text: &str) -> Result<Self, Diagnostic> {
        let mut builder = Builder {
            lines: text.lines().collect(),
            locations: Locations::default(),
            stack: Vec::new(),
        };
        Parser::new_from_str(text)
            .load(&mut builder, false)
            .map_err(|e| {
                let m = e.marker();
                Diagnostic::new(
                    format!("invalid YAML: {}", e.info()),
                    Span::new(m.line(), m.col() + 1, 1),
                )
            })?;
        Ok(builder.locations)
    }

    /// The span of the value at `path` (or of the nearest ancestor that is written out).
    ///
    /// A defaulted key has no value in the file; its enclosing section's key stands in.
    pub fn value(&self, path: &str) -> Span {
        match self.entries.get(path) {
            Some(Entry {
                value: Some(span), ..
            }) => *span,
            _ => self.key(path),
        }
    }

    /// The span of the key `path` ends with, or the nearest written-out ancestor's.
    pub fn key(&self, path: &str) -> Span {
        let mut path = path;
        loop {
            if let Some(span) = self.entries.get(path).and_then(|e| e.key.or(e.value)) {
                return span;
            }
            match parent(path) {
                Some(p) => path = p,
                None => {
                    return self
                        .entries
                        .get("")
                        .and_then(|e| e.value)
                        .unwrap_or(Span::start())
                }
            }
        }
    }

    /// The second occurrence of the key `path`, if it appears twice.
    pub fn duplicate(&self, path: &str) -> Option<Span> {
        self.duplicates
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, s)| *s)
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> `` -> None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |i| &path[..i]))
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, next: usize },
}

struct Builder<'a> {
    lines: Vec<&'a str>,
    locations: Locations,
    stack: Vec<Frame>,
}

impl Builder<'_> {
    fn span(&self, mark: Marker) -> Span {
        let line = self
            .lines
            .get(mark.line().wrapping_sub(1))
            .copied()
            .unwrap_or("");
        Span::new(mark.line(), mark.col() + 1, token_len(line, mark.col()))
    }

    /// The path of the node that starts now, advancing the enclosing collection.
    fn next_path(&mut self) -> String {
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Mapping { path, key }) => join(path, &key.take().unwrap_or_default()),
            Some(Frame::Sequence { path, next }) => {
                *next += 1;
                format!("{path}[{}]", *next - 1)
            }
        }
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
    }

    fn record_value(&mut self, path: String, span: Option<Span>) {
        self.locations.entries.entry(path).or_default().value = span;
    }

    fn record_key(&mut self, key: String, span: Span) {
        let Some(Frame::Mapping { path, key: slot }) = self.stack.last_mut() else {
            return;
        };
        let full = join(path, &key);
        // A block mapping's own mark is unreliable; its first key marks where it starts.
        if let Some(entry @ Entry { value: None, .. }) =
            self.locations.entries.get_mut(path.as_str())
        {
            entry.value = Some(span);
        }
        match self.locations.entries.entry(full) {
            std::collections::hash_map::Entry::Occupied(seen) => {
                // File the repeated key's value under a path no one asks for.
                *slot = Some(format!("{key}\u{0}duplicate"));
                self.locations.duplicates.push((seen.key().clone(), span));
            }
            std::collections::hash_map::Entry::Vacant(new) => {
                *slot = Some(key);
                new.insert(Entry {
                    key: Some(span),
                    value: None,
                });
            }
        }
    }

    fn start_collection(&mut self, mark: Marker, frame: impl FnOnce(String) -> Frame) {
        let path = self.next_path();
        let line = self
            .lines
            .get(mark.line().wrapping_sub(1))
            .copied()
            .unwrap_or("");
        let flow = line
            .chars()
            .nth(mark.col())
            .is_some_and(|c| c == '{' || c == '[' || c == '-');
        let span = if flow { Some(self.span(mark)) } else { None };
        self.record_value(path.clone(), span);
        self.stack.push(frame(path));
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) if self.expects_key() => {
                let span = self.span(mark);
                self.record_key(text, span);
            }
            Event::Scalar(..) | Event::Alias(_) => {
                let path = self.next_path();
                let span = self.span(mark);
                self.record_value(path, Some(span));
            }
            Event::MappingStart(..) => {
                self.start_collection(mark, |path| Frame::Mapping { path, key: None })
            }
            Event::SequenceStart(..) => {
                self.start_collection(mark, |path| Frame::Sequence { path, next: 0 })
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Length of the YAML token starting at character `col` of `line`, for the caret.
pub(crate) fn token_len(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col).collect();
    let len = match rest.first() {
        Some(&q @ ('"' | '\'')) => {
            let mut i = 1;
            while i < rest.len() && !(rest[i] == q && rest[i - 1] != '\\') {
                i += 1;
            }
            i + 1
        }
        Some('-') if rest.get(1).is_none_or(|c| c.is_whitespace()) => 1,
        Some('{' | '[') => {
            let mut depth = 0usize;
            let end = rest.iter().position(|&c| {
                match c {
                    '{' | '[' => depth += 1,
                    '}' | ']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                depth == 0
            });
            end.map_or(1, |e| e + 1)
        }
        _ => {
            let mut end = rest.len();
            for i in 0..rest.len() {
                let next_is_space = rest.get(i + 1).is_none_or(|c| c.is_whitespace());
                let stop = matches!(rest[i], ',' | ']' | '}')
                    || (rest[i] == ':' && next_is_space)
                    || (rest[i] == '#' && i > 0 && rest[i - 1].is_whitespace());
                if stop {
                    end = i;
                    break;
                }
            }
            rest[..end]
                .iter()
                .collect::<String>()
                .trim_end()
                .chars()
                .count()
        }
    };
    len.clamp(1, rest.len().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: vit   # comment
vit:
  heads: 3
  distillation: { teacher: cnn, loss: hard }
cnn:
  layers:
    - relu
    - conv: { in: 1, out: 32, kernel: 3 }
    - dropout: 0.5
name: again
";

    #[test]
    fn finds_block_and_flow_values_with_their_lengths() {
        let l = Locations::build(TEXT).unwrap();
        assert_eq!(l.value("name"), Span::new(1, 7, 3));
        assert_eq!(l.value("vit.heads"), Span::new(3, 10, 1));
        assert_eq!(l.key("vit.heads"), Span::new(3, 3, 5));
        assert_eq!(l.value("vit.distillation.teacher"), Span::new(4, 28, 3));
        assert_eq!(l.value("vit.distillation"), Span::new(4, 17, 28));
        assert_eq!(l.value("cnn.layers[0]"), Span::new(7, 7, 4));
        assert_eq!(l.value("cnn.layers[1].conv.kernel"), Span::new(8, 39, 1));
        assert_eq!(l.value("cnn.layers[2].dropout"), Span::new(9, 16, 3));
        assert_eq!(l.value("cnn.layers"), Span::new(7, 5, 1));
    }

    #[test]
    fn block_mapping_value_starts_at_its_first_key() {
        let l = Locations::build(TEXT).unwrap();
        assert_eq!(l.value("vit"), Span::new(3, 3, 5));
        assert_eq!(l.value("cnn.layers[1]"), Span::new(8, 7, 4));
    }

    #[test]
    fn defaulted_keys_fall_back_to_their_section() {
        let l = Locations::build(TEXT).unwrap();
        assert_eq!(l.value("vit.pooling"), Span::new(2, 1, 3));
        assert_eq!(l.value("vit.distillation.alpha"), Span::new(4, 3, 12));
        assert_eq!(l.value("train.epochs"), Span::new(1, 1, 4));
    }

    #[test]
    fn duplicate_keys_are_recorded_and_keep_the_first_value() {
        let l = Locations::build(TEXT).unwrap();
        assert_eq!(l.duplicate("name"), Some(Span::new(10, 1, 4)));
        assert_eq!(l.value("name"), Span::new(1, 7, 3));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = Locations::build("a: [1, 2\n").unwrap_err();
        assert_eq!(err.span.line, 2);
    }

    #[test]
    fn token_lengths() {
        assert_eq!(token_len("  lr: 0.005 # x", 6), 5);
        assert_eq!(token_len("  name: \"a b\"", 8), 5);
        assert_eq!(token_len("{ a: 1 }, b", 0), 8);
        assert_eq!(token_len("x: { a: 1 }", 8), 1);
        assert_eq!(token_len("", 0), 1);
        assert_eq!(token_len("  - relu", 2), 1);
        assert_eq!(token_len("  d: -4", 5), 2);
    }
}
