//! Fit a DisRNN to synthetic data and print the group-aligned latent R^2 and a checksum of the
//! fitted parameters. The recipe is shared with the C, C++ and Python versions
//! (examples/downstream/README.md) so every language prints the same three result lines: the data
//! come from the library itself (a ground-truth model generated with fixed seeds), so nothing
//! depends on a language's own random numbers.
//!
//!     cargo run --release --example fit_synthetic
use disrnn::{align_r2, gen, Config, Control, DataKind, Dataset, Model, ModelOption, Trainer, TrainOption};

const N: usize = 20;
const K: usize = 4;
const GROUPS: [usize; 2] = [2, 2];
const TRIALS: usize = 4;
const BINS: usize = 250;

/// FNV-1a (64-bit) over the little-endian bytes of each value's IEEE-754 bits.
fn fnv1a64(values: &[f64]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

fn run() -> disrnn::Result<()> {
    println!("fit_synthetic (Rust): libdisrnn {}", disrnn::version_string());

    // Ground truth: a random DisRNN with two groups of two latents, latent noise s = 0.05.
    let mut cfg = Config::new(N, K)?;
    cfg.set_groups(&GROUPS)?;
    cfg.set_int(ModelOption::StdMode, disrnn::value::STD_FIXED)?;
    cfg.set_double(ModelOption::StdValue, 0.05)?;
    cfg.set_seed(1)?;
    let truth = Model::new(&cfg)?;

    let mut data = Dataset::new(N, 0, DataKind::Continuous)?;
    let mut reference = Vec::with_capacity(K * TRIALS * BINS);
    for r in 0..TRIALS {
        let (x, z) = truth.generate(None, BINS, None, gen::LATENT_NOISE | gen::OBS_NOISE, 100 + r as u64)?;
        data.add_trial(&x, None, None)?;
        reference.extend_from_slice(&z);
    }

    // The fitted model: same shape, its own seed, a PC penalty.
    let mut cfg = Config::new(N, K)?;
    cfg.set_groups(&GROUPS)?;
    cfg.set_double(ModelOption::Beta, 1.0)?;
    cfg.set_seed(2)?;
    let mut model = Model::new(&cfg)?;
    drop(cfg);

    let mut last_loss = f64::NAN;
    {
        let mut tr = Trainer::new(&mut model, &data, 3)?;
        tr.set_int(TrainOption::Epochs, 30)?;
        tr.set_int(TrainOption::BatchSize, 100)?;
        tr.set_double(TrainOption::Lr, 0.02)?;
        tr.fit_with(|p| {
            last_loss = p.terms[0];
            Control::Continue
        })?;
    }

    let mu = model.latents(&data)?;
    let al = align_r2(&reference, &GROUPS, &mu, &GROUPS)?;
    let params = model.params()?;
    println!("final loss: {:.6}", last_loss);
    println!("group-aligned R^2: {:.6}", al.r2);
    println!("parameter checksum: {:016x} ({} values)", fnv1a64(&params), params.len());
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fit_synthetic: {e}");
        std::process::exit(1);
    }
}
