//! `models`: every compiled spec with its input, classes, size and cost.
use vit_runtime::dfdx::tensor::Cpu;
use vit_runtime::model::{ImageClassifier, Kind, Summary, Visitor};

/// One line of the table.
struct Row {
    name: &'static str,
    input: (usize, usize, usize),
    classes: usize,
    summary: Summary,
    dataset: &'static str,
}

struct Describe;

impl Visitor<Cpu> for Describe {
    type Output = Row;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(self) -> Row
    where
        M: ImageClassifier<C, H, W, K, Cpu>,
    {
        Row {
            name: M::NAME,
            input: (C, H, W),
            classes: K,
            summary: M::SUMMARY,
            dataset: M::RECIPE.dataset.name(),
        }
    }
}

/// The `models` table, one line per compiled spec.
pub fn table() -> String {
    let rows: Vec<Row> = vit_runtime::models::NAMES
        .iter()
        .filter_map(|name| vit_runtime::models::visit::<Cpu, _>(name, Describe))
        .collect();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$} {:<4} {:>9} {:>7} {:>10} {:>7} {:>5} {:>5} {:>5} {:>8} {:>5} {:>11}  {}\n",
        "model",
        "kind",
        "input",
        "classes",
        "params",
        "tokens",
        "dim",
        "depth",
        "heads",
        "head_dim",
        "mlp",
        "MFLOPs/img",
        "dataset"
    );
    for Row {
        name,
        input: (c, h, w),
        classes,
        summary: s,
        dataset,
    } in rows
    {
        let dash = |v: usize| match s.kind {
            Kind::Cnn => "-".to_string(),
            Kind::Vit => v.to_string(),
        };
        out += &format!(
            "{:<width$} {:<4} {:>9} {:>7} {:>10} {:>7} {:>5} {:>5} {:>5} {:>8} {:>5} {:>11.2}  {}\n",
            name,
            s.kind.name(),
            format!("{c}x{h}x{w}"),
            classes,
            s.params,
            dash(s.tokens),
            dash(s.embed_dim),
            dash(s.depth),
            dash(s.heads),
            dash(s.head_dim),
            dash(s.mlp_hidden),
            s.flops as f64 / 1e6,
            dataset
        );
    }
    out
}
