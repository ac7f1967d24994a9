//! serde_yaml's errors, reworded for spec authors and pointed at the offending key or value.
//!
//! serde_yaml renders an error as `path: message at line L column C`; the message parts are
//! serde's stable wording (`unknown field`, `missing field`, `invalid type`, ...).

use super::locations::{token_len, Locations};
use crate::diagnostic::{did_you_mean, one_of, Diagnostic, Span};

pub(super) fn translate(
    error: &serde_yaml::Error,
    text: &str,
    locations: Option<&Locations>,
) -> Diagnostic {
    let serde_span = error.location().map_or(Span::start(), |l| {
        let line = text.lines().nth(l.line().wrapping_sub(1)).unwrap_or("");
        Span::new(
            l.line(),
            l.column(),
            token_len(line, l.column().saturating_sub(1)),
        )
    });
    let mut message = error.to_string();
    if let Some(l) = error.location() {
        message = message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
    }
    let (path, message) = split_path(&message);
    let at = |f: fn(&Locations, &str) -> Span, p: &str| locations.map_or(serde_span, |l| f(l, p));
    let section = if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{path}`")
    };

    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = split_quoted(rest);
        let mut d = Diagnostic::new(
            format!("unknown key `{key}` in {section}"),
            at(Locations::key, &join(path, key)),
        );
        if let Some(suggestion) = did_you_mean(key, expected.iter().copied()) {
            d = d.help(format!("did you mean `{suggestion}`?"));
        }
        return d.note(format!("{section} accepts {}", one_of(&expected)));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = split_quoted(rest);
        let what = if path.ends_with(']') {
            format!("unknown CNN layer `{value}`")
        } else {
            format!("unknown value `{value}` for `{path}`")
        };
        let mut d = Diagnostic::new(what, at(Locations::value, path));
        if let Some(suggestion) = did_you_mean(value, expected.iter().copied()) {
            d = d.help(format!("did you mean `{suggestion}`?"));
        }
        return d.note(format!("expected {}", one_of(&expected)));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let (key, _) = split_quoted(rest);
        return Diagnostic::new(
            format!("missing key `{key}` in {section}"),
            at(Locations::key, path),
        )
        .help(format!("add `{key}: ...` to {section}"));
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let (key, _) = split_quoted(rest);
        let full = join(path, key);
        let span = locations
            .and_then(|l| l.duplicate(&full))
            .unwrap_or(serde_span);
        return Diagnostic::new(format!("duplicate key `{key}` in {section}"), span)
            .help("remove one of the two");
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                let span = if path.is_empty() {
                    serde_span
                } else {
                    at(Locations::value, path)
                };
                return wrong_type(path, found, expected, &snippet(text, span), span);
            }
        }
    }
    let span = if path.is_empty() {
        serde_span
    } else {
        at(Locations::value, path)
    };
    // The `expecting` text of a value with several accepted forms (an untagged enum, which
    // serde reports at the enclosing section): "`key` to be one of ..." or "each value to
    // be one of ...".
    if let Some((subject, forms)) = message.split_once(" to be one of") {
        let (key_path, subject) = match subject.strip_prefix('`').and_then(|k| k.strip_suffix('`'))
        {
            Some(key) => (join(path, key), format!("`{}`", join(path, key))),
            None => (path.to_owned(), format!("every value of {section}")),
        };
        return Diagnostic::new(
            format!("{subject} must be one of{forms}"),
            at(Locations::value, &key_path),
        );
    }
    Diagnostic::new(format!("invalid YAML: {message}"), span)
}

fn wrong_type(path: &str, found: &str, expected: &str, written: &str, span: Span) -> Diagnostic {
    if path.ends_with(']') && expected.ends_with("variant") {
        return match (found, expected) {
            ("unit variant", _) => {
                let example = match written {
                    "conv" => "{ in: 1, out: 32, kernel: 3 }",
                    "batch_norm" => "{ features: 32 }",
                    "max_pool" | "avg_pool" => "{ kernel: 2 }",
                    "linear" => "{ in: 256, out: 10 }",
                    "dropout" => "0.5",
                    _ => "...",
                };
                Diagnostic::new(format!("CNN layer `{written}` needs parameters"), span)
                    .help(format!("write it as `- {written}: {example}`"))
            }
            (_, "unit variant") => {
                Diagnostic::new(format!("CNN layer `{written}` takes no parameters"), span)
                    .help(format!("write it as a bare `- {written}`"))
            }
            _ => Diagnostic::new(
                format!("invalid CNN layer: expected {expected}, found {found}"),
                span,
            ),
        };
    }
    if expected == "map with a single key" {
        return Diagnostic::new(
            "a CNN layer is a bare name or a single `name: parameters` entry",
            span,
        )
        .help("put each layer in its own list item: `- conv: { ... }`");
    }
    let expected = match expected {
        "usize" | "u64" | "u32" => "a non-negative integer".to_owned(),
        "f64" | "f32" => "a number".to_owned(),
        "a boolean" => "`true` or `false`".to_owned(),
        "a sequence" => "a list".to_owned(),
        e if e.starts_with("struct ") => "a mapping".to_owned(),
        e if e.contains("length 2") || e.contains("of 2 elements") => {
            "a list of 2 numbers".to_owned()
        }
        e => e.to_owned(),
    };
    let found = match found {
        "map" => "a mapping",
        "sequence" => "a list",
        "unit value" => "nothing",
        f => f,
    };
    let path = if path.is_empty() {
        "the spec".to_owned()
    } else {
        format!("`{path}`")
    };
    Diagnostic::new(
        format!("expected {expected} for {path}, found {found}"),
        span,
    )
}

/// `vit.heads: invalid type` -> (`vit.heads`, `invalid type`); serde paths have no spaces.
fn split_path(message: &str) -> (&str, &str) {
    match message.split_once(": ") {
        Some((path, rest))
            if !path.is_empty()
                && path
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_.[]".contains(c)) =>
        {
            (path, rest)
        }
        _ => ("", message),
    }
}

/// ``x`, expected `a` or `b``, after the opening backtick -> (`x`, [`a`, `b`]).
fn split_quoted(rest: &str) -> (&str, Vec<&str>) {
    let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = tail.split('`').skip(1).step_by(2).collect();
    (name, expected)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The text a span underlines.
fn snippet(text: &str, span: Span) -> String {
    let line = text.lines().nth(span.line.wrapping_sub(1)).unwrap_or("");
    line.chars()
        .skip(span.col.saturating_sub(1))
        .take(span.len)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Span;
    use crate::spec::parse;

    const BASE: &str = "\
name: t
input: { channels: 1, height: 28, width: 28 }
classes: 10
vit:
  tokenizer: conv
  patch: 4
  embed_dim: 64
  depth: 2
  heads: 4
  mlp_ratio: 2
  positions: learned
train:
  dataset: mnist
  epochs: 1
  batch_size: 8
  optimizer: { kind: adam, lr: 0.001 }
";

    fn error(from: &str, to: &str) -> (String, Span, Vec<String>) {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "`{from}` not in BASE");
        let d = parse(&text).unwrap_err();
        (d.message, d.span, d.help)
    }

    #[test]
    fn base_parses() {
        parse(BASE).unwrap();
    }

    #[test]
    fn unknown_key_points_at_the_key_and_suggests() {
        let (message, span, help) = error("  heads: 4", "  hedas: 4");
        assert_eq!(message, "unknown key `hedas` in `vit`");
        assert_eq!(span, Span::new(9, 3, 5));
        assert_eq!(help, ["did you mean `heads`?"]);
    }

    #[test]
    fn unknown_flow_key_inside_a_list_item() {
        let text = BASE.replacen(
            "vit:",
            "cnn:\n  layers:\n    - conv: { in: 1, otu: 2, kernel: 3 }\nvit_:",
            1,
        );
        let d = parse(&text).unwrap_err();
        assert_eq!(d.message, "unknown key `otu` in `cnn.layers[0].conv`");
        assert_eq!(d.span, Span::new(6, 22, 3));
        assert_eq!(d.help, ["did you mean `out`?"]);
    }

    #[test]
    fn missing_key_points_at_its_section() {
        let (message, span, _) = error("  depth: 2\n", "");
        assert_eq!(message, "missing key `depth` in `vit`");
        assert_eq!(span, Span::new(4, 1, 3));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let (message, span, _) = error("heads: 4", "heads: four");
        assert_eq!(
            message,
            "expected a non-negative integer for `vit.heads`, found string \"four\""
        );
        assert_eq!(span, Span::new(9, 10, 4));
    }

    #[test]
    fn unknown_enum_value_lists_the_allowed_ones() {
        let text = BASE.replacen(
            "  positions: learned",
            "  positions: learned\n  activation: swish",
            1,
        );
        let d = parse(&text).unwrap_err();
        assert_eq!(d.message, "unknown value `swish` for `vit.activation`");
        assert_eq!(d.notes, ["expected `gelu` or `relu`"]);
        assert_eq!(d.span, Span::new(12, 15, 5));
    }

    #[test]
    fn duplicate_key_points_at_the_second_one() {
        let (message, span, _) = error("  depth: 2\n", "  depth: 2\n  depth: 3\n");
        assert_eq!(message, "duplicate key `depth` in `vit`");
        assert_eq!(span, Span::new(9, 3, 5));
    }

    #[test]
    fn bare_layer_that_needs_parameters() {
        let text = BASE.replacen("vit:", "cnn:\n  layers:\n    - conv\nvit_:", 1);
        let d = parse(&text).unwrap_err();
        assert_eq!(d.message, "CNN layer `conv` needs parameters");
        assert_eq!(
            d.help,
            ["write it as `- conv: { in: 1, out: 32, kernel: 3 }`"]
        );
        assert_eq!(d.span, Span::new(6, 7, 4));
    }

    #[test]
    fn a_value_of_none_of_the_accepted_forms_names_them() {
        let text = "name: x\ninput: { channels: 1, height: 28, width: 28 }\nclasses: 10\n\
            vit: { tokenizer: conv, patch: 4, embed_dim: 8, depth: 1, heads: 2, mlp_ratio: 2, positions: learned }\n\
            train:\n  dataset: { folder: pets }\n  epochs: 1\n  batch_size: 8\n  optimizer: { kind: adam, lr: 0.1 }\n";
        let d = parse(text).unwrap_err();
        assert_eq!(
            d.message,
            "`train.dataset` must be one of `mnist`, `fashion_mnist`, `{ image_folder: PATH, resize: false }`"
        );
        assert_eq!(d.span, Span::new(6, 12, 16));
        let text = text.replace(
            "dataset: { folder: pets }",
            "dataset: mnist\n  normalize: { mean: [0.5, x] }",
        );
        let d = parse(&text).unwrap_err();
        assert_eq!(
            d.message,
            "every value of `train.normalize` must be one of: a number for every channel, \
             a list of one number per channel"
        );
        assert_eq!(d.span.line, 7);
    }

    #[test]
    fn syntax_error_is_located() {
        let (message, span, _) = error("  depth: 2", "  depth: 2: 3");
        assert!(message.starts_with("invalid YAML: "), "{message}");
        assert_eq!(span.line, 8);
    }
}
