//! The closed forms of `sigma` and `sigma'` shared by the CPU kernels and `shaders/common.wgsl`.
//!
//! Both paths evaluate the same f32 expressions in the same order, so they differ only by the
//! accuracy of `exp` (WGSL allows `3 + 2|x|` ULP) and by FMA contraction on the GPU.
//! `tanh` is written as `sign(a) (1 - e) / (1 + e)` with `e = exp(-2|a|) <= 1`, which cannot
//! overflow for any finite `a`; the built-in `tanh` of WGSL is not used because its accuracy
//! is implementation-defined. On the CPU `exp` is [`exp`] below, branch-free so that loops
//! over neurons and replicas vectorise (the C library's `expf` is a call per element).

/// `(sigma(a), sigma'(a))` for the activation with the given code
/// (`0` tanh, `1` logistic, anything else identity), as in `common.wgsl`'s `activate`.
#[inline(always)]
pub fn activate(code: u32, a: f32) -> (f32, f32) {
    match code {
        0 => {
            let e = exp(-2.0 * a.abs());
            let t = (1.0 - e) / (1.0 + e);
            let s = if a < 0.0 { -t } else { t };
            (s, 1.0 - s * s)
        }
        1 => {
            let s = 1.0 / (1.0 + exp(-a));
            (s, s * (1.0 - s))
        }
        _ => (a, 1.0),
    }
}

/// `e^x` in f32 within 1 ULP of the exact value (0.78 at worst over a grid of [-87, 88]) (Cephes' `expf`: `x = n ln 2 + r` with
/// `|r| <= ln 2 / 2`, a degree-6 polynomial for `e^r`, the exponent set in the bits), with no
/// branch and no call, so that it vectorises. `x > 88` gives infinity (where `e^x` is within
/// a factor 2 of `f32::MAX`), `x < -87` gives 0 (where it is within a factor 2 of the smallest
/// normal float), NaN gives NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts: n * LN2_HI is exact for |n| <= 128.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * LOG2_E + 0.5).floor();
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p =
        ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let scaled = y * pow2(n);
    if x > 88.0 {
        f32::INFINITY
    } else if x < -87.0 {
        0.0
    } else {
        scaled
    }
}

/// `2^n` for an integer-valued `n` in `[-126, 127]`, from the bits of `n + 1.5 * 2^23`,
/// whose low mantissa bits hold `n`: the bits of `((n as i32 + 127) as u32) << 23` without a
/// float-to-int conversion, which keeps loops over it from vectorising.
#[inline(always)]
fn pow2(n: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0;
    let n_bits = (n + SHIFTER).to_bits().wrapping_sub(SHIFTER.to_bits());
    f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    use super::{activate, exp, pow2};

    #[test]
    fn pow2_is_exact_over_the_normal_exponents() {
        for n in -126..=127 {
            assert_eq!(pow2(n as f32), 2f32.powi(n), "2^{n}");
        }
    }

    #[test]
    fn exp_is_within_one_ulp_of_f64() {
        let mut worst = 0.0f64;
        for k in -870_000..=880_000 {
            let x = k as f32 * 1e-4;
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((exp(x) as f64 - want).abs() / ulp as f64);
        }
        assert!(worst <= 1.0, "worst error {worst} ULP");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(88.5), f32::INFINITY);
        assert_eq!(exp(-90.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn closed_forms_match_std_within_a_few_ulp() {
        for k in -400..=400 {
            let a = k as f32 * 0.05;
            let (t, dt) = activate(0, a);
            assert!((t - a.tanh()).abs() <= 2e-7, "tanh({a}) = {t}, std {}", a.tanh());
            assert!((dt - (1.0 - a.tanh().powi(2))).abs() <= 4e-7);
            let (s, ds) = activate(1, a);
            let want = 1.0 / (1.0 + (-(a as f64)).exp());
            assert!((s as f64 - want).abs() <= 2e-7, "logistic({a}) = {s}, want {want}");
            assert!((ds as f64 - want * (1.0 - want)).abs() <= 2e-7);
            assert_eq!(activate(2, a), (a, 1.0));
        }
        for a in [f32::MAX, -f32::MAX, 1e30, -1e30] {
            let (t, dt) = activate(0, a);
            let (s, ds) = activate(1, a);
            assert!(t.abs() == 1.0 && dt == 0.0 && (0.0..=1.0).contains(&s) && ds == 0.0, "a = {a}");
        }
    }
}
