//! The anomaly score through the model API: every entry (int8, u8, f32 input; `Autoencoder` and
//! `Runner`) gives the kernel's score of the input codes against the reconstruction, on a model
//! wide enough that a float input is scored in several chunks; the threshold flags; a model
//! without one says so; a broken score requantization is refused at load.

use autoencoder_core::anomaly_score_s8::{anomaly_score_s8, ScoreParams};
use autoencoder_core::model::{
    encoded_len_bound, write, Anomaly, InputScaling, Layer, ModelBody, ModelKind, Quant, Threshold, Weights,
};
use autoencoder_core::quantize_f32::{quantize_f32, quantize_u8};
use autoencoder_core::testutil::SplitMix64;
use autoencoder_core::{quantize_multiplier, Autoencoder, Model, ModelError, Runner};

/// Input values: more than two of the runner's 64-value chunks, and not a multiple of 64.
const N: usize = 150;
/// Code width.
const K: usize = 4;

struct Parts {
    enc_w: Vec<u8>,
    dec_w: Vec<u8>,
    enc_scales: Vec<u8>,
    dec_scales: Vec<u8>,
    enc_bias: Vec<u8>,
    dec_bias: Vec<u8>,
    enc_m: Vec<u8>,
    dec_m: Vec<u8>,
    enc_s: Vec<u8>,
    dec_s: Vec<u8>,
    shape: Vec<u8>,
    offset: Vec<u8>,
    divisor: Vec<u8>,
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn i32_bytes(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    values.into_iter().flat_map(i32::to_le_bytes).collect()
}

fn parts() -> Parts {
    let mut rng = SplitMix64::new(5);
    let mut bytes = |n: usize| (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>();
    let (enc_w, dec_w) = (bytes(K * N), bytes(N * K));
    let mut rng = SplitMix64::new(6);
    Parts {
        enc_w,
        dec_w,
        enc_scales: f32_bytes(std::iter::repeat_n(0.01, K)),
        dec_scales: f32_bytes(std::iter::repeat_n(0.01, N)),
        enc_bias: i32_bytes((0..K).map(|_| rng.range_i32(-2000, 2000))),
        dec_bias: i32_bytes((0..N).map(|_| rng.range_i32(-300, 300))),
        enc_m: i32_bytes(std::iter::repeat_n(1 << 30, K)),
        dec_m: i32_bytes(std::iter::repeat_n(1 << 30, N)),
        enc_s: vec![(-7i8) as u8; K],
        dec_s: vec![(-3i8) as u8; N],
        shape: [N as u32].iter().flat_map(|d| d.to_le_bytes()).collect(),
        offset: f32_bytes((0..N).map(|i| i as f32 * 0.5 - 20.0)),
        divisor: f32_bytes((0..N).map(|i| 3.0 + (i % 7) as f32)),
    }
}

const INPUT: Quant = Quant {
    scale: 0.02,
    zero_point: -5,
};
const OUTPUT: Quant = Quant {
    scale: 0.03,
    zero_point: 11,
};

fn body(p: &Parts, threshold: Option<Threshold>) -> ModelBody<'_> {
    let mut layers = heapless::Vec::new();
    let dense = |inputs: usize, outputs: usize, w, scales, bias, m, s, output| Layer::FullyConnected {
        inputs: inputs as u32,
        outputs: outputs as u32,
        params: Weights {
            weights: w,
            weight_scales: scales,
            bias,
            multipliers: m,
            shifts: s,
            output,
        },
    };
    let code = Quant {
        scale: 0.1,
        zero_point: 0,
    };
    layers
        .push(dense(
            N,
            K,
            &p.enc_w[..],
            &p.enc_scales[..],
            &p.enc_bias[..],
            &p.enc_m[..],
            &p.enc_s[..],
            code,
        ))
        .unwrap();
    layers
        .push(dense(
            K,
            N,
            &p.dec_w[..],
            &p.dec_scales[..],
            &p.dec_bias[..],
            &p.dec_m[..],
            &p.dec_s[..],
            OUTPUT,
        ))
        .unwrap();
    let mut anomaly = Anomaly::derive(INPUT, OUTPUT).unwrap();
    anomaly.threshold = threshold;
    ModelBody {
        name: "wide",
        source: "",
        float_test_mse: f32::NAN,
        input_shape: &p.shape[..],
        input_scaling: InputScaling::MinMax {
            offset: &p.offset[..],
            divisor: &p.divisor[..],
        },
        input: INPUT,
        code_after: 1,
        layers,
        anomaly,
    }
}

fn blob(body: &ModelBody<'_>) -> Result<Vec<u8>, ModelError> {
    let mut out = vec![0u8; encoded_len_bound(body)];
    let len = write(ModelKind::FullyConnected, body, &mut out)?;
    out.truncate(len);
    Ok(out)
}

#[test]
fn the_stored_requantization_is_the_output_scale_over_the_input_scale() {
    let p = parts();
    let bytes = blob(&body(&p, None)).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let (m, s) = quantize_multiplier(0.03f32 as f64 / 0.02f32 as f64).unwrap();
    assert_eq!(
        model.score_params(),
        ScoreParams {
            input_zero_point: -5,
            output_zero_point: 11,
            multiplier: m,
            shift: s
        }
    );
}

#[test]
fn every_entry_gives_the_kernels_score_of_the_input_against_its_reconstruction() {
    let p = parts();
    let bytes = blob(&body(&p, None)).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let params = model.score_params();
    let (scaling, quant) = (model.input_scaling(), model.input_quant());
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut ae = Autoencoder::<N, K>::new(model.clone(), &mut scratch).unwrap();
    let mut scratch2 = vec![0i8; model.scratch_len()];
    let mut runner = Runner::new(model.clone(), &mut scratch2).unwrap();
    let mut rng = SplitMix64::new(7);
    let mut distinct = std::collections::BTreeSet::new();
    for case in 0..100 {
        let x: [f32; N] = std::array::from_fn(|i| (i as f32 * 0.5 - 20.0) + (rng.next_f64() * 12.0) as f32);
        let mut q = [0i8; N];
        quantize_f32(&x, &scaling, quant, &mut q).unwrap();
        let out = ae.reconstruct(&q).unwrap();
        let want = anomaly_score_s8(&q, &out, &params).unwrap();
        distinct.insert(want);
        assert_eq!(ae.anomaly_score(&q), Ok(want), "case {case}");
        assert_eq!(ae.anomaly_score_f32(&x), Ok(want), "case {case}");
        assert_eq!(runner.anomaly_score(&q), Ok(want), "case {case}");
        assert_eq!(runner.anomaly_score_f32(&x), Ok(want), "case {case}");

        let b: [u8; N] = std::array::from_fn(|_| rng.next_u64() as u8);
        let mut qb = [0i8; N];
        quantize_u8(&b, &scaling, quant, &mut qb).unwrap();
        let want = anomaly_score_s8(&qb, &ae.reconstruct(&qb).unwrap(), &params).unwrap();
        assert_eq!(ae.anomaly_score_u8(&b), Ok(want), "case {case}");
        assert_eq!(runner.anomaly_score_u8(&b), Ok(want), "case {case}");
    }
    // The model is not degenerate: the scores vary.
    assert!(distinct.len() > 50, "{distinct:?}");
    // A NaN has no code, a wrong width is named.
    let mut x = [0f32; N];
    x[100] = f32::NAN;
    assert_eq!(ae.anomaly_score_f32(&x), Err(ModelError::NotANumber { index: 100 }));
    assert!(matches!(
        runner.anomaly_score(&[0i8; N - 1]),
        Err(ModelError::InputWidthMismatch {
            model: N,
            requested: 149
        })
    ));
}

#[test]
fn the_threshold_flags_scores_above_it_and_a_model_without_one_still_scores() {
    let p = parts();
    let plain = blob(&body(&p, None)).unwrap();
    let model = Model::from_bytes(&plain).unwrap();
    assert_eq!(model.threshold(), None);
    let mut scratch = vec![0i8; model.scratch_len()];
    let mut ae = Autoencoder::<N, K>::new(model, &mut scratch).unwrap();
    let q = [3i8; N];
    let score = ae.anomaly_score(&q).unwrap();
    assert!(score > 0);
    assert_eq!(ae.is_anomaly(&q), Err(ModelError::NoThreshold));
    assert_eq!(ae.is_anomaly_f32(&[0.0; N]), Err(ModelError::NoThreshold));

    for (threshold, flagged) in [(score - 1, true), (score, false), (score + 1, false)] {
        let t = Threshold {
            score: threshold,
            false_positive_rate: 0.01,
        };
        let bytes = blob(&body(&p, Some(t))).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        assert_eq!(model.threshold(), Some(threshold));
        assert_eq!(model.body().anomaly.threshold, Some(t));
        let mut scratch = vec![0i8; model.scratch_len()];
        let mut ae = Autoencoder::<N, K>::new(model, &mut scratch).unwrap();
        assert_eq!(ae.is_anomaly(&q), Ok(flagged), "threshold {threshold}");
    }
}

#[test]
fn a_score_requantization_out_of_range_is_refused_at_load() {
    let p = parts();
    for (multiplier, shift) in [(-1, 0), (1 << 30, 31), (1 << 30, -32)] {
        let mut b = body(&p, None);
        b.anomaly.score_multiplier = multiplier;
        b.anomaly.score_shift = shift;
        assert_eq!(
            blob(&b),
            Err(ModelError::BadScore { multiplier, shift }),
            "{multiplier} {shift}"
        );
    }
}
