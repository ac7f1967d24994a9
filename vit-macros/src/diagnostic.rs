//! Errors located in a spec file, rendered the way rustc renders its own.
//!
//! A proc-macro cannot point a Rust span into a YAML file, so the location goes into the
//! message instead (as askama and pest_derive do): `--> path:line:col`, the line, a caret.

use std::fmt::Write as _;

/// A 1-based line and column (in characters) and the length of the underlined text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    pub const fn new(line: usize, col: usize, len: usize) -> Self {
        Span { line, col, len }
    }

    /// The first character of the file: for errors about the file as a whole.
    pub const fn start() -> Self {
        Span::new(1, 1, 1)
    }
}

/// A spec file as the user sees it: the path as written in the macro call, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub display: String,
    pub text: String,
}

/// One error in a spec file, with hints on how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    pub help: Vec<String>,
    pub notes: Vec<String>,
    /// An error in another file that this one stems from (an invalid teacher spec).
    pub cause: Option<Box<Cause>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Introduces the nested error: `in the teacher spec`.
    pub context: String,
    pub file: SourceFile,
    pub diagnostic: Diagnostic,
}

/// The errors of one spec, collected before the build fails (as serde_derive's `Ctxt`):
/// independent mistakes are reported together, each at its own line, instead of one per
/// build.
#[derive(Debug, Default)]
pub struct Errors(Vec<Diagnostic>);

impl Errors {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// The value of `result`, or `None` once its error is recorded.
    pub fn take<T>(&mut self, result: Result<T, Diagnostic>) -> Option<T> {
        result.map_err(|d| self.push(d)).ok()
    }

    /// `value` if no error was recorded; every recorded error otherwise.
    ///
    /// A check gives `None` only after recording why, so `None` without an error is a bug
    /// in the checker, reported at `at` rather than as a panic inside the compiler.
    pub fn finish<T>(self, value: Option<T>, at: Span) -> Result<T, Vec<Diagnostic>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if !self.0.is_empty() => Err(self.0),
            _ => Err(vec![Diagnostic::new(
                "internal error: the spec was rejected without a reason",
                at,
            )
            .help("please report this spec to the vit-rs developers")]),
        }
    }
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            help: Vec::new(),
            notes: Vec::new(),
            cause: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn caused_by(
        mut self,
        context: impl Into<String>,
        file: SourceFile,
        diagnostic: Diagnostic,
    ) -> Self {
        self.cause = Some(Box::new(Cause {
            context: context.into(),
            file,
            diagnostic,
        }));
        self
    }

    /// Renders without the leading `error: `, which rustc adds itself.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = self.message.clone();
        self.render_location(file, &mut out);
        if let Some(cause) = &self.cause {
            let _ = write!(
                out,
                "\nnote: {}: {}",
                cause.context, cause.diagnostic.message
            );
            cause.diagnostic.render_location(&cause.file, &mut out);
        }
        out
    }

    fn render_location(&self, file: &SourceFile, out: &mut String) {
        let Span { line, col, len } = self.span;
        let pad = " ".repeat(line.to_string().len());
        let _ = write!(out, "\n{pad}--> {}:{line}:{col}", file.display);
        if let Some(text) = file.text.lines().nth(line.wrapping_sub(1)) {
            let text = text.trim_end();
            let indent: String = text
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(
                out,
                "\n{pad} |\n{line} | {text}\n{pad} | {indent}{}",
                "^".repeat(len.max(1))
            );
        }
        for help in &self.help {
            let _ = write!(out, "\n{pad} = help: {help}");
        }
        for note in &self.notes {
            let _ = write!(out, "\n{pad} = note: {note}");
        }
    }
}

pub use vit_spec::did_you_mean;

/// `a`, `a or b`, `a, b or c`: for "expected one of" lists in messages.
pub fn one_of<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile {
            display: "models/vit.yaml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn renders_rustc_style_with_caret_under_the_value() {
        let src = file("name: vit\nvit:\n  heads: 3\n");
        let d = Diagnostic::new(
            "heads (3) do not divide embed_dim (64)",
            Span::new(3, 10, 1),
        )
        .help("choose heads from the divisors of 64: 1, 2, 4, 8, 16, 32, 64");
        let expected = "heads (3) do not divide embed_dim (64)\n \
                        --> models/vit.yaml:3:10\n  \
                        |\n\
                        3 |   heads: 3\n  \
                        |          ^\n  \
                        = help: choose heads from the divisors of 64: 1, 2, 4, 8, 16, 32, 64";
        assert_eq!(d.render(&src), expected);
    }

    #[test]
    fn gutter_widens_with_the_line_number_and_caret_spans_the_token() {
        let src = file(&format!("{}  activation: swish\n", "#\n".repeat(11)));
        let d = Diagnostic::new("unknown", Span::new(12, 15, 5)).note("n");
        let rendered = d.render(&src);
        assert!(rendered.contains("\n  --> models/vit.yaml:12:15\n   |\n12 |   activation: swish\n   |               ^^^^^\n   = note: n"), "{rendered}");
    }

    #[test]
    fn renders_the_cause_in_its_own_file() {
        let student = file("vit:\n  distillation: { teacher: cnn }\n");
        let teacher = SourceFile {
            display: "models/cnn.yaml".into(),
            text: "classes: 0\n".into(),
        };
        let inner = Diagnostic::new("`classes` must be at least 1", Span::new(1, 10, 1));
        let d = Diagnostic::new("teacher spec `cnn` is invalid", Span::new(2, 28, 3)).caused_by(
            "in the teacher spec",
            teacher,
            inner,
        );
        let rendered = d.render(&student);
        assert!(rendered.contains("note: in the teacher spec: `classes` must be at least 1\n --> models/cnn.yaml:1:10\n  |\n1 | classes: 0\n  |          ^"), "{rendered}");
    }

    #[test]
    fn location_past_the_end_renders_without_excerpt() {
        let d = Diagnostic::new("empty", Span::new(3, 1, 1));
        assert_eq!(d.render(&file("")), "empty\n --> models/vit.yaml:3:1");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("hedas", ["heads", "depth", "patch"]),
            Some("heads")
        );
        assert_eq!(did_you_mean("swish", ["gelu", "relu"]), None);
        assert_eq!(did_you_mean("otu", ["in", "out"]), Some("out"));
        assert_eq!(
            did_you_mean("embed", ["depth", "embed_dim"]),
            Some("embed_dim")
        );
        assert_eq!(one_of(&["gelu", "relu"]), "`gelu` or `relu`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
