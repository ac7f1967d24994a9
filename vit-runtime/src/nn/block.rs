//! The pre-norm encoder block:
//! `x + drop_path(attn(norm1(x)))`, then `x + drop_path(mlp(norm2(x)))`.
use super::attention::{AttentionOptions, SelfAttention};
use super::functional::Activation;
use super::kernels::{AttentionMaps, Mode};
use super::mlp::Mlp;
use super::norm::LayerNorm;
use dfdx::prelude::*;

/// What a block's forward pass needs besides its tensors (all from the spec).
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    pub mode: Mode,
    pub activation: Activation,
    pub dropout: f32,
    pub attention_dropout: f32,
    /// This block's stochastic-depth rate.
    pub drop_path: f32,
    /// The eps of both LayerNorms.
    pub norm_eps: f32,
    pub want_maps: bool,
}

#[derive(Debug, Clone)]
pub struct EncoderBlock<
    const DIM: usize,
    const H: usize,
    const HIDDEN: usize,
    Attn,
    E: Dtype,
    D: Storage<E>,
> {
    pub norm1: LayerNorm<DIM, E, D>,
    pub attn: Attn,
    pub norm2: LayerNorm<DIM, E, D>,
    pub mlp: Mlp<DIM, HIDDEN, E, D>,
}

impl<const DIM: usize, const H: usize, const HIDDEN: usize, Attn, E, D> TensorCollection<E, D>
    for EncoderBlock<DIM, H, HIDDEN, Attn, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
    Attn: TensorCollection<E, D>,
{
    type To<E2: Dtype, D2: Device<E2>> = EncoderBlock<DIM, H, HIDDEN, Attn::To<E2, D2>, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("norm1", |s| &s.norm1, |s| &mut s.norm1),
                Self::module("attn", |s| &s.attn, |s| &mut s.attn),
                Self::module("norm2", |s| &s.norm2, |s| &mut s.norm2),
                Self::module("mlp", |s| &s.mlp, |s| &mut s.mlp),
            ),
            |(norm1, attn, norm2, mlp)| EncoderBlock {
                norm1,
                attn,
                norm2,
                mlp,
            },
        )
    }
}

impl<const DIM: usize, const H: usize, const HIDDEN: usize, Attn, D>
    EncoderBlock<DIM, H, HIDDEN, Attn, f32, D>
where
    D: super::kernels::Kernels,
    Attn: SelfAttention<DIM, H, D>,
{
    /// `(B, S, DIM) -> (B, S, DIM)`, plus this block's attention maps if asked for.
    pub fn forward<B: Dim, const S: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        options: BlockOptions,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        Option<AttentionMaps<B, H, S, D>>,
    ) {
        let attention = AttentionOptions {
            mode: options.mode,
            attention_dropout: options.attention_dropout,
            dropout: options.dropout,
            want_maps: options.want_maps,
        };
        let (a, maps) = self.attn.forward(
            self.norm1.forward(x.with_empty_tape(), options.norm_eps),
            attention,
        );
        let x = drop_path(a, options.drop_path, options.mode) + x;
        let m = self.mlp.forward(
            self.norm2.forward(x.with_empty_tape(), options.norm_eps),
            options.activation,
            options.dropout,
            options.mode,
        );
        (drop_path(m, options.drop_path, options.mode) + x, maps)
    }
}

/// Stochastic depth: zero a residual branch for a random `p` of the samples in
/// training and scale the survivors by `1 / (1 - p)` (timm's `DropPath`).
pub fn drop_path<B: Dim, S: Dim, M: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, S, M), f32, D, T>,
    p: f32,
    mode: Mode,
) -> Tensor<(B, S, M), f32, D, T> {
    if mode == Mode::Eval || p <= 0.0 {
        return x;
    }
    let shape = *x.shape();
    let dev = x.device().clone();
    let keep = 1.0 - p;
    let draws: Tensor<(B,), f32, D> = dev.sample_uniform_like(&(shape.0,));
    let mask: Vec<f32> = draws
        .as_vec()
        .into_iter()
        .map(|u| if u < keep { 1.0 / keep } else { 0.0 })
        .collect();
    let mask = dev
        .tensor_from_vec(mask, (shape.0,))
        .broadcast_like::<_, Axes2<1, 2>>(&shape);
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::attention::FusedAttention;
    use crate::nn::norm::LAYER_NORM_EPS;

    const B: usize = 2;
    const S: usize = 5;
    const DIM: usize = 8;
    const H: usize = 2;
    const HIDDEN: usize = 16;
    type Block = EncoderBlock<DIM, H, HIDDEN, FusedAttention<DIM, H, 4, 24, f32, Cpu>, f32, Cpu>;

    fn options(mode: Mode) -> BlockOptions {
        BlockOptions {
            mode,
            activation: Activation::Gelu,
            dropout: 0.1,
            attention_dropout: 0.1,
            drop_path: 0.2,
            norm_eps: LAYER_NORM_EPS as f32,
            want_maps: true,
        }
    }

    #[test]
    fn encoder_block_in_eval_is_two_pre_norm_residuals_attention_then_mlp() {
        let dev = Cpu::seed_from_u64(20);
        let mut block: Block = BuildModule::build(&dev);
        // Distinct norms, so that swapping norm1 and norm2 would show.
        block.norm1.weight = dev.sample_normal();
        block.norm1.bias = dev.sample_normal();
        block.norm2.weight = dev.sample_normal();
        block.norm2.bias = dev.sample_normal();
        let x: Tensor<Rank3<B, S, DIM>, f32, Cpu> = dev.sample_normal();

        let (y, maps) = block.forward(x.clone(), options(Mode::Eval));
        assert_eq!(y.shape().concrete(), [B, S, DIM]);
        assert_eq!(
            maps.expect("maps were asked for").shape().concrete(),
            [B, H, S, S]
        );

        let eval = AttentionOptions {
            mode: Mode::Eval,
            attention_dropout: 0.0,
            dropout: 0.0,
            want_maps: false,
        };
        let (a, _) = block
            .attn
            .forward(block.norm1.forward(x.clone(), LAYER_NORM_EPS as f32), eval);
        let h = x + a;
        let m = block.mlp.forward(
            block.norm2.forward(h.clone(), LAYER_NORM_EPS as f32),
            Activation::Gelu,
            0.0,
            Mode::Eval,
        );
        let expected = h + m;
        for (i, (got, want)) in y.as_vec().iter().zip(expected.as_vec()).enumerate() {
            assert!(
                (got - want).abs() <= 1e-5,
                "y[{i}]: got {got}, expected {want}"
            );
        }
    }

    #[test]
    fn drop_path_in_eval_is_the_identity() {
        let dev = Cpu::seed_from_u64(21);
        let x: Tensor<Rank3<64, 3, 4>, f32, Cpu> = dev.sample_normal();
        assert_eq!(drop_path(x.clone(), 0.5, Mode::Eval).as_vec(), x.as_vec());
    }

    #[test]
    fn drop_path_at_rate_zero_in_train_is_the_identity() {
        let dev = Cpu::seed_from_u64(22);
        let x: Tensor<Rank3<8, 3, 4>, f32, Cpu> = dev.sample_normal();
        assert_eq!(drop_path(x.clone(), 0.0, Mode::Train).as_vec(), x.as_vec());
    }

    #[test]
    fn drop_path_in_train_zeroes_whole_samples_and_rescales_survivors() {
        const P: f32 = 0.5;
        let dev = Cpu::seed_from_u64(23);
        let x: Tensor<Rank3<64, 3, 4>, f32, Cpu> = dev.sample_normal();
        let (xs, ys) = (x.as_vec(), drop_path(x, P, Mode::Train).as_vec());
        let (mut dropped, mut kept) = (0, 0);
        for (sample, (x, y)) in xs.chunks(12).zip(ys.chunks(12)).enumerate() {
            if y.iter().all(|&v| v == 0.0) {
                dropped += 1;
            } else {
                kept += 1;
                for (a, b) in x.iter().zip(y) {
                    assert!(
                        (a / (1.0 - P) - b).abs() <= 1e-5,
                        "sample {sample} partly dropped: {y:?} from {x:?}"
                    );
                }
            }
        }
        assert!(
            dropped > 0 && kept > 0,
            "{dropped} dropped, {kept} kept of 64 at p = {P}"
        );
    }
}
