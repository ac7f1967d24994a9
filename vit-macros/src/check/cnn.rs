//! CNN layers: follows the feature shape through the list, as PyTorch would at run time.

use super::rules::{greater_than_zero, positive, probability};
use crate::diagnostic::Diagnostic;
use crate::ir::{self, CnnLayer, Feature, Input};
use crate::spec::{self, Layer, Spec};

pub(super) fn check(
    spec: &Spec,
    cnn: &spec::Cnn,
    input: Input,
    classes: usize,
) -> Result<ir::Cnn, Diagnostic> {
    let mut shape = Shape {
        feature: Feature::Map {
            c: input.channels,
            h: input.height,
            w: input.width,
        },
        from: "the input image".to_owned(),
        sized_by: None,
    };
    let mut layers = Vec::with_capacity(cnn.layers.len());
    for (i, layer) in cnn.layers.iter().enumerate() {
        let path = format!("cnn.layers[{i}]");
        let line = spec.locations.value(&path).line;
        let checked = match *layer {
            Layer::Conv(conv) => check_conv(spec, &path, conv, &shape)?,
            Layer::BatchNorm(norm) => check_batch_norm(spec, &path, norm, &shape)?,
            Layer::MaxPool(pool) | Layer::AvgPool(pool) => {
                let kind = if matches!(layer, Layer::MaxPool(_)) {
                    "max_pool"
                } else {
                    "avg_pool"
                };
                check_pool(spec, &format!("{path}.{kind}"), pool, &shape)?
            }
            Layer::Relu => CnnLayer::Relu,
            Layer::Gelu => CnnLayer::Gelu,
            Layer::Dropout(p) => {
                CnnLayer::Dropout(probability(spec, &format!("{path}.dropout"), p)?)
            }
            Layer::Flatten => match shape.feature {
                Feature::Map { c, h, w } => CnnLayer::Flatten {
                    c,
                    h,
                    w,
                    size: c * h * w,
                },
                Feature::Flat(n) => {
                    return Err(Diagnostic::new(
                        format!("the features are already flat ({n}) here"),
                        spec.locations.value(&path),
                    )
                    .note(format!("they come from {}", shape.from))
                    .help("remove this `flatten`"));
                }
            },
            Layer::Linear(linear) => check_linear(spec, &path, linear, &shape)?,
        };
        shape = shape.after(&checked, &path, line);
        layers.push(checked);
    }
    match shape.feature {
        _ if layers.is_empty() => Err(Diagnostic::new(
            "the CNN has no layers",
            spec.locations.key("cnn.layers"),
        )),
        Feature::Flat(n) if n == classes => Ok(ir::Cnn { layers }),
        Feature::Flat(n) => {
            let at = shape
                .sized_by
                .clone()
                .unwrap_or_else(|| format!("cnn.layers[{}]", layers.len() - 1));
            let mut d = Diagnostic::new(
                format!("the CNN ends with {n} features, but the model has {classes} classes"),
                spec.locations.value(&at),
            )
            .note(format!(
                "`classes` is on line {}",
                spec.locations.value("classes").line
            ));
            if at.ends_with(".out") {
                d = d.help(format!(
                    "set `out: {classes}`: the last linear layer gives the class scores"
                ));
            } else {
                d = d.help(format!(
                    "end with `- linear: {{ in: {n}, out: {classes} }}`"
                ));
            }
            Err(d)
        }
        Feature::Map { c, h, w } => Err(Diagnostic::new(
            format!(
                "the CNN ends with a {c}x{h}x{w} feature map instead of {classes} class scores"
            ),
            spec.locations.key("cnn.layers"),
        )
        .help(format!(
            "end with `- flatten` and `- linear: {{ in: {}, out: {classes} }}`",
            c * h * w
        ))),
    }
}

/// The feature shape between two layers, and where it comes from (for messages).
struct Shape {
    feature: Feature,
    from: String,
    /// The `linear.out` or `flatten` that set the current flat size.
    sized_by: Option<String>,
}

impl Shape {
    fn after(self, layer: &CnnLayer, path: &str, line: usize) -> Shape {
        let (feature, from, sized_by) = match *layer {
            CnnLayer::Conv {
                out_c,
                out_hw: (h, w),
                ..
            } => (
                Feature::Map { c: out_c, h, w },
                format!("the conv on line {line}"),
                None,
            ),
            CnnLayer::MaxPool {
                c, out_hw: (h, w), ..
            }
            | CnnLayer::AvgPool {
                c, out_hw: (h, w), ..
            } => (
                Feature::Map { c, h, w },
                format!("the pool on line {line}"),
                None,
            ),
            CnnLayer::Flatten { size, .. } => {
                let from = match self.feature {
                    Feature::Map { c, h, w } => {
                        format!("the flatten on line {line}: {c} x {h} x {w} = {size}")
                    }
                    Feature::Flat(_) => format!("the flatten on line {line}"),
                };
                (Feature::Flat(size), from, Some(path.to_owned()))
            }
            CnnLayer::Linear { out, .. } => (
                Feature::Flat(out),
                format!("the linear layer on line {line}"),
                Some(format!("{path}.linear.out")),
            ),
            CnnLayer::BatchNorm { .. } | CnnLayer::Relu | CnnLayer::Gelu | CnnLayer::Dropout(_) => {
                return self
            }
        };
        Shape {
            feature,
            from,
            sized_by,
        }
    }

    fn map(
        &self,
        spec: &Spec,
        path: &str,
        what: &str,
    ) -> Result<(usize, usize, usize), Diagnostic> {
        match self.feature {
            Feature::Map { c, h, w } => Ok((c, h, w)),
            Feature::Flat(n) => Err(Diagnostic::new(format!("{what} needs a channels x height x width feature map, but the features are already flat ({n})"), spec.locations.value(path))
                .note(format!("they come from {}", self.from))
                .help("move `flatten` after the last conv or pool layer")),
        }
    }
}

fn check_conv(
    spec: &Spec,
    path: &str,
    conv: spec::Conv,
    shape: &Shape,
) -> Result<CnnLayer, Diagnostic> {
    let p = |key: &str| format!("{path}.conv.{key}");
    let in_c = positive(spec, &p("in"), conv.inp)?;
    let out_c = positive(spec, &p("out"), conv.out)?;
    let kernel = positive(spec, &p("kernel"), conv.kernel)?;
    let stride = positive(spec, &p("stride"), conv.stride)?;
    let padding = conv.padding;
    let (c, h, w) = shape.map(spec, &format!("{path}.conv"), "a conv")?;
    if in_c != c {
        return Err(Diagnostic::new(
            format!("conv `in` ({in_c}) does not match the {c} channels coming into it"),
            spec.locations.value(&p("in")),
        )
        .note(format!(
            "they come from {}, which gives {c}x{h}x{w}",
            shape.from
        ))
        .help(format!("set `in: {c}`")));
    }
    let (ph, pw) = (h + 2 * padding, w + 2 * padding);
    if kernel > ph || kernel > pw {
        return Err(Diagnostic::new(
            format!("conv kernel ({kernel}) is larger than its padded input ({ph}x{pw})"),
            spec.locations.value(&p("kernel")),
        )
        .note(format!(
            "the input is {c}x{h}x{w} (from {}), padded by {padding} on each side",
            shape.from
        ))
        .help(format!(
            "use `kernel: {}` or less, or more padding",
            ph.min(pw)
        )));
    }
    let out_hw = ((ph - kernel) / stride + 1, (pw - kernel) / stride + 1);
    Ok(CnnLayer::Conv {
        in_c,
        out_c,
        kernel,
        stride,
        padding,
        in_hw: (h, w),
        out_hw,
    })
}

fn check_batch_norm(
    spec: &Spec,
    path: &str,
    norm: spec::BatchNorm,
    shape: &Shape,
) -> Result<CnnLayer, Diagnostic> {
    let p = |key: &str| format!("{path}.batch_norm.{key}");
    let features = positive(spec, &p("features"), norm.features)?;
    let (c, h, w) = match shape.feature {
        Feature::Map { c, h, w } => (c, h, w),
        Feature::Flat(n) => {
            return Err(Diagnostic::new(
                format!("batch_norm normalises the channels of a feature map, but the features are already flat ({n})"),
                spec.locations.value(&format!("{path}.batch_norm")),
            )
            .note(format!("they come from {}", shape.from))
            .help("put the batch norm before `flatten` (it is PyTorch's BatchNorm2d)"));
        }
    };
    if features != c {
        return Err(Diagnostic::new(
            format!(
                "batch_norm `features` ({features}) does not match the {c} channels coming into it"
            ),
            spec.locations.value(&p("features")),
        )
        .note(format!(
            "they come from {}, which gives {c}x{h}x{w}",
            shape.from
        ))
        .help(format!("set `features: {c}`")));
    }
    let eps = greater_than_zero(spec, &p("eps"), norm.eps)?;
    if !(norm.momentum > 0.0 && norm.momentum <= 1.0) {
        return Err(Diagnostic::new(
            format!("`{}` must be in (0, 1], got {}", p("momentum"), norm.momentum),
            spec.locations.value(&p("momentum")),
        )
        .help("the running statistics move by this fraction toward each batch's; PyTorch's default is 0.1"));
    }
    Ok(CnnLayer::BatchNorm {
        c,
        eps,
        momentum: norm.momentum,
    })
}

fn check_pool(
    spec: &Spec,
    path: &str,
    pool: spec::Pool,
    shape: &Shape,
) -> Result<CnnLayer, Diagnostic> {
    let kernel = positive(spec, &format!("{path}.kernel"), pool.kernel)?;
    let stride = positive(
        spec,
        &format!("{path}.stride"),
        pool.stride.unwrap_or(kernel),
    )?;
    let (c, h, w) = shape.map(spec, path, "a pool")?;
    if kernel > h || kernel > w {
        return Err(Diagnostic::new(
            format!("pool kernel ({kernel}) is larger than its {h}x{w} input"),
            spec.locations.value(&format!("{path}.kernel")),
        )
        .note(format!("the input is {c}x{h}x{w}, from {}", shape.from))
        .help(format!("use `kernel: {}` or less", h.min(w))));
    }
    let (in_hw, out_hw) = (
        (h, w),
        ((h - kernel) / stride + 1, (w - kernel) / stride + 1),
    );
    Ok(if path.ends_with("max_pool") {
        CnnLayer::MaxPool {
            c,
            kernel,
            stride,
            in_hw,
            out_hw,
        }
    } else {
        CnnLayer::AvgPool {
            c,
            kernel,
            stride,
            in_hw,
            out_hw,
        }
    })
}

fn check_linear(
    spec: &Spec,
    path: &str,
    linear: spec::Linear,
    shape: &Shape,
) -> Result<CnnLayer, Diagnostic> {
    let inp = positive(spec, &format!("{path}.linear.in"), linear.inp)?;
    let out = positive(spec, &format!("{path}.linear.out"), linear.out)?;
    match shape.feature {
        Feature::Map { c, h, w } => Err(Diagnostic::new(
            format!("a linear layer needs flat features, but gets a {c}x{h}x{w} feature map"),
            spec.locations.value(&format!("{path}.linear")),
        )
        .note(format!("it comes from {}", shape.from))
        .help(format!(
            "add `- flatten` before this layer (giving {} features)",
            c * h * w
        ))),
        Feature::Flat(n) if n != inp => Err(Diagnostic::new(
            format!("linear `in` ({inp}) does not match the {n} features coming into it"),
            spec.locations.value(&format!("{path}.linear.in")),
        )
        .note(format!("they come from {}", shape.from))
        .help(format!("set `in: {n}`"))),
        Feature::Flat(_) => Ok(CnnLayer::Linear { inp, out }),
    }
}
