//! The closed forms of `sigma` and `sigma'` shared by the CPU kernels and `shaders/common.wgsl`.
//!
//! Both paths evaluate the same f32 expressions in the same order, so they differ only by the
//! accuracy of `exp` (WGSL allows `3 + 2|x|` ULP) and by FMA contraction on the GPU.
//! `tanh` is written as `sign(a) (1 - e) / (1 + e)` with `e = exp(-2|a|) <= 1`, which cannot
//! overflow for any finite `a`; the built-in `tanh` of WGSL is not used because its accuracy
//! is implementation-defined.

/// `(sigma(a), sigma'(a))` for the activation with the given code
/// (`0` tanh, `1` logistic, anything else identity), as in `common.wgsl`'s `activate`.
#[inline]
pub fn activate(code: u32, a: f32) -> (f32, f32) {
    match code {
        0 => {
            let e = (-2.0 * a.abs()).exp();
            let t = (1.0 - e) / (1.0 + e);
            let s = if a < 0.0 { -t } else { t };
            (s, 1.0 - s * s)
        }
        1 => {
            let s = 1.0 / (1.0 + (-a).exp());
            (s, s * (1.0 - s))
        }
        _ => (a, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::activate;

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
