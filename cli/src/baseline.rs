//! The plain backpropagation baseline of the online classification experiments: the same
//! layered network and initial weights as the local rule, trained by per-sample SGD with
//! heavy-ball momentum on the same stream of samples, and scored *prequentially* (each
//! sample is predicted with the current weights before the step on it is taken).
//!
//! Everything is computed in **f64**, from the network's f32 initial weights and the f32
//! data and targets. The loss of a sample is `(1/2) sum_o (x_o - z_o)^2` over the outputs
//! (the local rule's loss with `q = 1` and no masks), and one step is
//! `v <- momentum v - lr grad; w <- w + v` over every weight, biases included (the bias is
//! the input neuron held at 1, as in [`localprop::network`]). This is the update that the local
//! rule's [`localprop::Policy::ReverseCostate`] follows in its infinite-speed limit.

use crate::data::Dataset;
use localprop::error::{Error, Result};
use localprop::network::Network;
use localprop::params::Activation;
use localprop::rng::Rng;
use localprop::signal::Order;

/// Per-sample SGD with heavy-ball momentum: `v <- momentum v - lr grad; w <- w + v`
/// (`v` starts at 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdMomentum {
    /// The learning rate, finite and `>= 0`.
    pub lr: f32,
    /// The momentum coefficient, in `[0, 1)`; `0` is plain SGD.
    pub momentum: f32,
}

impl SgdMomentum {
    /// The setting tuned for the digits experiment (`[64, 32, 10]` tanh network with bias,
    /// features `/16`, targets `+-0.8` one-hot, two passes): `lr = 0.02, momentum = 0.5`, the
    /// best mean prequential accuracy of the grid `lr` in {0.005, 0.01, 0.02, 0.03, 0.05, 0.1}
    /// x `momentum` in {0, 0.5, 0.9} over the shuffled order, and within 0.3 points of the best
    /// over the sequential one (see the `tuning_table` test). Momentum 0.9 with `lr >= 0.02`
    /// saturates the tanh units and stalls near chance.
    pub const DIGITS: SgdMomentum = SgdMomentum { lr: 0.02, momentum: 0.5 };
}

/// The prequential score of one pass over the samples.
#[derive(Clone, Debug, PartialEq)]
pub struct PassResult {
    /// The pass, counted from 0.
    pub pass: usize,
    /// Fraction of the pass's samples whose class (the argmax of the outputs, the first on
    /// ties) was right when predicted, before the step on that sample.
    pub accuracy: f64,
    /// Mean over the pass's samples of the loss `(1/2) sum_o (x_o - z_o)^2`, each measured
    /// before the step on that sample.
    pub mean_loss: f64,
    /// Number of samples in the pass.
    pub samples: usize,
    /// Whether each sample of the pass, in order, was predicted right.
    pub correct: Vec<bool>,
}

/// The sample order of pass `pass` over `rows` rows, exactly as
/// [`localprop::signal::HeldSamples`] visits them: `0..rows` for [`Order::Sequential`], and for
/// [`Order::Shuffled`] the permutation of `0..rows` shuffled with seed `seed + pass`
/// (wrapping). Empty when `rows` is 0.
pub fn pass_order(rows: usize, order: Order, pass: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..rows).collect();
    if let Order::Shuffled { seed } = order {
        Rng::new(seed.wrapping_add(pass)).shuffle(&mut perm);
    }
    perm
}

/// The network's weights, their velocities and the work buffers of one sample.
struct Learner<'a> {
    net: &'a Network,
    ix: localprop::network::EdgeIndex,
    activation: Activation,
    w: Vec<f64>,
    v: Vec<f64>,
    /// Neuron values (inputs and bias included).
    x: Vec<f64>,
    /// `sigma'(a_i)`.
    g: Vec<f64>,
    /// `dLoss/da_i`.
    delta: Vec<f64>,
    /// `dLoss/dx_i` of the output terms.
    err: Vec<f64>,
}

impl<'a> Learner<'a> {
    fn new(net: &'a Network, activation: Activation) -> Self {
        let n = net.n();
        Learner {
            net,
            ix: net.index(),
            activation,
            w: net.initial_weights().iter().map(|&w| w as f64).collect(),
            v: vec![0.0; net.n_edges()],
            x: vec![0.0; n],
            g: vec![0.0; n],
            delta: vec![0.0; n],
            err: vec![0.0; n],
        }
    }

    /// Forward pass for the external inputs `u`; neurons in index order, which is a
    /// topological order because every edge goes from a lower to a higher index.
    fn forward(&mut self, u: &[f32]) {
        let (net, inputs) = (self.net, self.net.inputs());
        self.x[..inputs].iter_mut().zip(u).for_each(|(x, &u)| *x = u as f64);
        if net.has_bias() {
            self.x[inputs] = 1.0;
        }
        let ix = &self.ix;
        for i in net.d()..net.n() {
            let a: f64 = ix.incoming(i).map(|e| self.w[e] * self.x[ix.src[e] as usize]).sum();
            (self.x[i], self.g[i]) = localprop::reference::sigma(self.activation, a);
        }
    }

    /// The index of the largest output (the first on ties).
    fn predict(&self) -> usize {
        let mut best = 0;
        for (k, &o) in self.net.outputs().iter().enumerate() {
            if self.x[o as usize] > self.x[self.net.outputs()[best] as usize] {
                best = k;
            }
        }
        best
    }

    /// Backward pass after [`Learner::forward`] for targets `z`; returns the loss.
    fn backward(&mut self, z: &[f32]) -> f64 {
        let net = self.net;
        let mut loss = 0.0;
        for (&o, &z) in net.outputs().iter().zip(z) {
            let dv = self.x[o as usize] - z as f64;
            self.err[o as usize] = dv;
            loss += 0.5 * dv * dv;
        }
        let ix = &self.ix;
        for i in (net.d()..net.n()).rev() {
            let back: f64 = ix.outgoing(i).map(|e| self.w[e] * self.delta[ix.dst[e] as usize]).sum();
            self.delta[i] = self.g[i] * (back + self.err[i]);
        }
        for &o in net.outputs() {
            self.err[o as usize] = 0.0;
        }
        loss
    }

    /// `dLoss/dw_e` after [`Learner::backward`].
    fn grad(&self, e: usize) -> f64 {
        self.delta[self.ix.dst[e] as usize] * self.x[self.ix.src[e] as usize]
    }

    /// The heavy-ball step after [`Learner::backward`].
    fn step(&mut self, lr: f64, momentum: f64) {
        for e in 0..self.w.len() {
            let grad = self.grad(e);
            self.v[e] = momentum * self.v[e] - lr * grad;
            self.w[e] += self.v[e];
        }
    }
}

/// Checks the network, data, targets, order and optimiser against each other.
fn validate(net: &Network, data: &Dataset, targets: &[f32], order: &[Vec<usize>], opt: SgdMomentum) -> Result<()> {
    if let Some((e, (j, i))) = net.edges().enumerate().find(|&(_, (j, i))| j >= i) {
        return Err(Error::Network(format!(
            "the baseline needs a feed-forward (layered) network whose edges go from lower to higher \
             neurons; edge {e} is {j} -> {i}"
        )));
    }
    let (rows, n_out) = (data.rows(), net.outputs().len());
    if data.dim != net.inputs() {
        return Err(Error::param("data.dim", data.dim, format!("the network's {} inputs", net.inputs())));
    }
    let want = rows.checked_mul(data.dim);
    if want != Some(data.features.len()) {
        return Err(Error::param(
            "data.features",
            format!("{} values", data.features.len()),
            format!("rows x dim = {rows} x {} values", data.dim),
        ));
    }
    if let Some(k) = data.features.iter().position(|v| !v.is_finite()) {
        let (r, c) = (k / data.dim, k % data.dim);
        return Err(Error::param(format!("data.features[{r}][{c}]"), data.features[k], "a finite number"));
    }
    if let Some(r) = data.labels.iter().position(|&l| l >= n_out) {
        return Err(Error::param(
            format!("data.labels[{r}]"),
            data.labels[r],
            format!("a class below the network's {n_out} outputs"),
        ));
    }
    if rows.checked_mul(n_out) != Some(targets.len()) {
        return Err(Error::param(
            "targets",
            format!("{} values", targets.len()),
            format!("rows x outputs = {rows} x {n_out} values"),
        ));
    }
    if let Some(k) = targets.iter().position(|v| !v.is_finite()) {
        return Err(Error::param(format!("targets[{}][{}]", k / n_out, k % n_out), targets[k], "a finite number"));
    }
    if !(opt.lr.is_finite() && opt.lr >= 0.0) {
        return Err(Error::param("lr", opt.lr, "a finite number >= 0"));
    }
    if !(opt.momentum.is_finite() && (0.0..1.0).contains(&opt.momentum)) {
        return Err(Error::param("momentum", opt.momentum, "a number in [0, 1)"));
    }
    for (p, pass) in order.iter().enumerate() {
        if pass.is_empty() {
            return Err(Error::param(format!("order[{p}]"), "an empty pass", "at least one sample index"));
        }
        if let Some(k) = pass.iter().position(|&r| r >= rows) {
            return Err(Error::param(format!("order[{p}][{k}]"), pass[k], format!("a row index below {rows}")));
        }
    }
    Ok(())
}

/// Trains a copy of `net`'s initial weights online, one sample at a time, and scores each
/// pass prequentially: for each sample, in the order `order[pass]` gives, the outputs are
/// computed with the current weights, the argmax is compared with the sample's label and
/// the loss against its target recorded, and only then is the [`SgdMomentum`] step on that
/// sample taken. Weights and velocities carry over from pass to pass.
///
/// `net` must be feed-forward with every edge from a lower to a higher neuron index, as any
/// [`localprop::Topology::Layered`] network is (with or without bias); `targets` holds one row
/// of `net.outputs().len()` values per data row (e.g. [`Dataset::one_hot`]), and every label
/// must be below the number of outputs. Build `order` with [`pass_order`] to follow the same
/// stream as a [`localprop::signal::HeldSamples`] of the local rule (a row held for `K` steps
/// there is one sample here).
///
/// Mismatched sizes, non-finite values, an empty pass or an index out of range are an
/// [`Error::Param`] naming the field (`data.dim`, `targets`, `order[p][k]`...); a network
/// with a backward edge is an [`Error::Network`]. If the run diverges (a non-finite loss or
/// weight), an [`Error::Param`] names `lr`, with the pass and sample.
pub fn train_prequential(
    net: &Network,
    activation: Activation,
    data: &Dataset,
    targets: &[f32],
    order: &[Vec<usize>],
    opt: SgdMomentum,
) -> Result<Vec<PassResult>> {
    validate(net, data, targets, order, opt)?;
    let (dim, n_out) = (data.dim, net.outputs().len());
    let (lr, momentum) = (opt.lr as f64, opt.momentum as f64);
    let diverged = |what: String| {
        Error::param("lr", opt.lr, format!("a smaller learning rate (or momentum {}): {what}", opt.momentum))
    };
    let mut learner = Learner::new(net, activation);
    let mut results = Vec::with_capacity(order.len());
    for (p, pass) in order.iter().enumerate() {
        let (mut correct, mut total_loss) = (Vec::with_capacity(pass.len()), 0f64);
        for (s, &r) in pass.iter().enumerate() {
            learner.forward(&data.features[r * dim..(r + 1) * dim]);
            correct.push(learner.predict() == data.labels[r]);
            let loss = learner.backward(&targets[r * n_out..(r + 1) * n_out]);
            if !loss.is_finite() {
                return Err(diverged(format!("the loss is {loss} at pass {p}, sample {s} (row {r})")));
            }
            total_loss += loss;
            learner.step(lr, momentum);
        }
        if let Some(e) = learner.w.iter().position(|w| !w.is_finite()) {
            return Err(diverged(format!("weight {e} is {} after pass {p}", learner.w[e])));
        }
        let samples = pass.len();
        results.push(PassResult {
            pass: p,
            accuracy: correct.iter().filter(|&&c| c).count() as f64 / samples as f64,
            mean_loss: total_loss / samples as f64,
            samples,
            correct,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Normalize;
    use localprop::network::NetworkSpec;
    use localprop::reference::{Problem, backprop};
    use localprop::signal::HeldSamples;
    use std::path::Path;
    use std::sync::Arc;

    fn digits() -> Dataset {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/digits.csv.gz");
        let mut d = Dataset::load_csv(&path, -1).unwrap();
        d.normalize(Normalize::MaxAbs).unwrap();
        d
    }

    fn orders(rows: usize, order: Order, passes: u64) -> Vec<Vec<usize>> {
        (0..passes).map(|p| pass_order(rows, order, p)).collect()
    }

    #[test]
    fn pass_order_matches_held_samples() {
        for order in [Order::Sequential, Order::Shuffled { seed: 11 }, Order::Shuffled { seed: u64::MAX }] {
            let (rows, hold) = (17, 3);
            let mut held = HeldSamples::new(Arc::new(vec![0.0; rows]), 1, hold, order).unwrap();
            for pass in 0..4u64 {
                let want: Vec<usize> =
                    (0..rows as u64).map(|k| held.row_at((pass * rows as u64 + k) * hold + 1)).collect();
                assert_eq!(pass_order(rows, order, pass), want, "{order:?}, pass {pass}");
            }
        }
        assert_ne!(pass_order(17, Order::Shuffled { seed: 1 }, 0), pass_order(17, Order::Shuffled { seed: 1 }, 1));
        assert!(pass_order(0, Order::Shuffled { seed: 1 }, 0).is_empty());
    }

    #[test]
    fn gradient_matches_the_reference() {
        let net = NetworkSpec::layered(&[3, 4, 2]).bias(true).seed(5).build().unwrap();
        let (u, z) = ([0.3f32, -0.7, 0.9], [0.8f32, -0.8]);
        for act in [Activation::Tanh, Activation::Logistic, Activation::Identity] {
            let mut l = Learner::new(&net, act);
            l.forward(&u);
            let loss = l.backward(&z);
            let inputs = [u[0], u[1], u[2], 1.0];
            let w = net.initial_weights();
            let prob = Problem { w, inputs: &inputs, targets: &z, masks: None, q: 1.0, activation: act };
            let want = backprop(&net, &prob).unwrap();
            assert!((loss - want.loss).abs() < 1e-12);
            for e in 0..net.n_edges() {
                assert!((l.grad(e) - want.grad[e]).abs() < 1e-12, "{act:?} edge {e}");
            }
            // Two heavy-ball steps on the same sample, by hand.
            let (lr, mom) = (0.1, 0.5);
            l.step(lr, mom);
            let v1: Vec<f64> = want.grad.iter().map(|g| -lr * g).collect();
            let w1: Vec<f64> = w.iter().zip(&v1).map(|(&w, v)| w as f64 + v).collect();
            l.forward(&u);
            l.backward(&z);
            let g1: Vec<f64> = (0..net.n_edges()).map(|e| l.grad(e)).collect();
            l.step(lr, mom);
            for e in 0..net.n_edges() {
                let want = w1[e] + mom * v1[e] - lr * g1[e];
                assert!((l.w[e] - want).abs() < 1e-12, "{act:?} edge {e}");
            }
        }
    }

    #[test]
    fn sizes_and_settings_are_validated() {
        let net = NetworkSpec::layered(&[2, 3, 2]).bias(true).build().unwrap();
        let data = Dataset {
            features: vec![0.0, 1.0, 1.0, 0.0],
            dim: 2,
            labels: vec![0, 1],
            classes: 2,
            path: "mem".into(),
            text_crc32: 0,
        };
        let t = data.one_hot(0.8, -0.8);
        let opt = SgdMomentum { lr: 0.1, momentum: 0.9 };
        let ord = vec![vec![0, 1]];
        let field = |r: Result<Vec<PassResult>>| match r {
            Err(Error::Param { field, .. }) => field,
            r => panic!("expected a parameter error, got {r:?}"),
        };
        let run = |data: &Dataset, t: &[f32], ord: &[Vec<usize>], opt| {
            train_prequential(&net, Activation::Tanh, data, t, ord, opt)
        };
        assert_eq!(run(&data, &t, &ord, opt).unwrap().len(), 1);
        assert!(run(&data, &t, &[], opt).unwrap().is_empty());
        assert_eq!(field(run(&data, &t[1..], &ord, opt)), "targets");
        assert_eq!(field(run(&data, &t, &[vec![0, 2]], opt)), "order[0][1]");
        assert_eq!(field(run(&data, &t, &[vec![0], vec![]], opt)), "order[1]");
        assert_eq!(field(run(&data, &t, &ord, SgdMomentum { lr: -1.0, momentum: 0.0 })), "lr");
        assert_eq!(field(run(&data, &t, &ord, SgdMomentum { lr: 0.1, momentum: 1.0 })), "momentum");
        let mut nan = t.clone();
        nan[3] = f32::NAN;
        assert_eq!(field(run(&data, &nan, &ord, opt)), "targets[1][1]");
        let wide = Dataset { dim: 1, ..data.clone() };
        assert_eq!(field(run(&wide, &t, &ord, opt)), "data.dim");
        let short = Dataset { features: vec![0.0; 3], ..data.clone() };
        assert_eq!(field(run(&short, &t, &ord, opt)), "data.features");
        let labels = Dataset { labels: vec![0, 2], classes: 3, ..data.clone() };
        assert_eq!(field(run(&labels, &t, &ord, opt)), "data.labels[1]");
        let rec = NetworkSpec::fully_connected(2, 2, false).bias(true).outputs(vec![3, 4]).build().unwrap();
        let r = train_prequential(&rec, Activation::Tanh, &data, &t, &ord, opt);
        assert!(matches!(r, Err(Error::Network(_))), "{r:?}");
        let big = SgdMomentum { lr: 1e30, momentum: 0.0 };
        let r = train_prequential(&net, Activation::Identity, &data, &t, &vec![vec![0, 1]; 20], big);
        assert_eq!(field(r), "lr");
    }

    #[test]
    fn learns_digits_prequentially() {
        let data = digits();
        let net = NetworkSpec::layered(&[64, 32, 10]).bias(true).build().unwrap();
        let targets = data.one_hot(0.8, -0.8);
        let opt = SgdMomentum::DIGITS;
        for order in [Order::Sequential, Order::Shuffled { seed: 1 }] {
            let res = train_prequential(&net, Activation::Tanh, &data, &targets, &orders(data.rows(), order, 2), opt)
                .unwrap();
            assert_eq!(res.iter().map(|r| (r.pass, r.samples)).collect::<Vec<_>>(), [(0, 1797), (1, 1797)]);
            assert!(res[0].accuracy > 0.8, "{order:?}: {res:?}");
            assert!(res[1].accuracy > res[0].accuracy && res[1].mean_loss < res[0].mean_loss, "{order:?}: {res:?}");
        }
    }

    /// The tuning table of the baseline (`cargo test --lib tuning_table -- --ignored --nocapture`):
    /// prequential accuracy of passes 0 and 1 and their mean, averaged over network seeds
    /// 0..3 (and, for the shuffled order, shuffle seeds 1..=3 for each).
    #[test]
    #[ignore = "prints the learning-rate / momentum table; takes a few seconds"]
    fn tuning_table() {
        let data = digits();
        let targets = data.one_hot(0.8, -0.8);
        println!("order       lr      mom   acc[0]  acc[1]  mean   (min acc[0] over runs)");
        let shuffled: Vec<Order> = (1..=3).map(|seed| Order::Shuffled { seed }).collect();
        for (name, orders_) in [("sequential", vec![Order::Sequential]), ("shuffled", shuffled)] {
            for lr in [0.005, 0.01, 0.02, 0.03, 0.05, 0.1] {
                for momentum in [0.0, 0.5, 0.9] {
                    let opt = SgdMomentum { lr, momentum };
                    let (mut a0, mut a1, mut min0, mut runs) = (0.0, 0.0, 1f64, 0.0);
                    for net_seed in 0..3 {
                        let net = NetworkSpec::layered(&[64, 32, 10]).bias(true).seed(net_seed).build().unwrap();
                        for &order in &orders_ {
                            let ord = orders(data.rows(), order, 2);
                            match train_prequential(&net, Activation::Tanh, &data, &targets, &ord, opt) {
                                Ok(r) => {
                                    (a0, a1, min0) = (a0 + r[0].accuracy, a1 + r[1].accuracy, min0.min(r[0].accuracy))
                                }
                                Err(_) => min0 = 0.0,
                            }
                            runs += 1.0;
                        }
                    }
                    let (a0, a1) = (a0 / runs, a1 / runs);
                    println!("{name:<11} {lr:<7} {momentum:<5} {a0:.4}  {a1:.4}  {:.4} ({min0:.4})", (a0 + a1) / 2.0);
                }
            }
        }
    }
}
