//! The rules single values follow (at least 1, a probability, a snake_case name) and the
//! wording the checks share.

use crate::diagnostic::Diagnostic;
use crate::ir::Input;
use crate::spec::Spec;

/// A size that must be at least 1.
pub(super) fn positive(spec: &Spec, path: &str, value: usize) -> Result<usize, Diagnostic> {
    if value == 0 {
        return Err(Diagnostic::new(
            format!("`{path}` must be at least 1"),
            spec.locations.value(path),
        ));
    }
    Ok(value)
}

/// A rate that must be finite and above zero (learning rates, standard deviations, ...).
pub(super) fn greater_than_zero(spec: &Spec, path: &str, value: f64) -> Result<f64, Diagnostic> {
    if !(value.is_finite() && value > 0.0) {
        return Err(Diagnostic::new(
            format!("`{path}` must be greater than 0, got {value}"),
            spec.locations.value(path),
        ));
    }
    Ok(value)
}

/// A drop probability: in [0, 1), as 1 would drop everything.
pub(super) fn probability(spec: &Spec, path: &str, p: f64) -> Result<f64, Diagnostic> {
    if !(0.0..1.0).contains(&p) {
        return Err(Diagnostic::new(
            format!("`{path}` must be a probability in [0, 1), got {p}"),
            spec.locations.value(path),
        )
        .help("0 disables it; 1 would drop everything"));
    }
    Ok(p)
}

/// A snake_case name whose CamelCase is a Rust identifier.
pub fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && syn::parse_str::<syn::Ident>(&camel_case(name)).is_ok()
}

pub(super) fn identifier(spec: &Spec, path: &str, name: &str) -> Result<String, Diagnostic> {
    if !is_identifier(name) {
        let mut d = Diagnostic::new(
            format!("`{path}` must be a snake_case identifier, got `{name}`"),
            spec.locations.value(path),
        )
        .note("the generated Rust type is its CamelCase");
        let fixed = snake_case(name);
        if fixed != name && syn::parse_str::<syn::Ident>(&camel_case(&fixed)).is_ok() {
            d = d.help(format!("did you mean `{fixed}`?"));
        }
        return Err(d);
    }
    Ok(name.to_owned())
}

/// `light_vit` -> `LightVit`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            // By chars, not bytes: an invalid name may start with a multi-byte character.
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `LightViT-2` -> `light_vit_2`: a best guess at what was meant. A new word starts at a
/// capital that follows a lowercase letter and is followed by one (so acronyms stay whole).
pub(super) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let before_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && after_lower && before_lower {
            out.push('_');
        }
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    out.trim_matches('_').to_owned()
}

pub(super) fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
}

pub(super) fn list(items: &[usize]) -> String {
    items
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn shape(input: Input) -> String {
    format!("{}x{}x{}", input.channels, input.height, input.width)
}
