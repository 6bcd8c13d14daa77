//! Example data, made here and nowhere downloaded: windows of a vibration sensor on four
//! machines, healthy for training, healthy and faulty for testing. `examples/make_vibration.rs`
//! writes them as `.npz` and `.csv`; `docs/data.md` describes them.
//!
//! A healthy window of machine `m` (`t = k / rate`, `k` in `0..L`):
//!
//! ```text
//! x[k] = dc + g · (1 + d·sin(2π·fa·t + pa)) · Σ_h A[m][h] · sin(2π·h·f·t + h·φ + P[m][h] + j_h) + σ·n[k]
//! ```
//!
//! with the shaft frequency `f` drifting ±2 % (1 s.d.) around the machine's, a random phase
//! `φ`, a gain `g` drifting 15 % (log-normal), a slow amplitude modulation (depth `d` up to 15 %,
//! `fa` 0.5-4 Hz), per-harmonic phase jitter `j_h` (0.15 rad), a sensor offset `dc` (0.05) and
//! broadband Gaussian noise `n` of standard deviation `σ` (`--noise`).
//!
//! A faulty test window is a healthy one changed by one fault whose energy — the sum of squares
//! of the change over the window — is a random 1 to 3 times the noise's expected energy `σ²·L`
//! (`fault_energy`; a dropout comes in whole samples: its energy is the most that fits under
//! that target, or, rarely, a little over it when even the shortest stretch exceeds it). The
//! faults are comparable to the noise in energy and differ from it in form; the signal's energy
//! is about ten times the noise's at the default noise level.
//!
//! Reconstruction error, the anomaly score, sees a fault that adds something the healthy signal
//! never has; a fault that takes noise away (a dropout's flatline) is the hardest for it. A
//! clipping fault (the sensor saturating) takes away more than it adds and scores *below*
//! healthy windows, which is why the example has impacts instead.
//!
//! | label | fault | the change |
//! |---|---|---|
//! | 0 | none (healthy) | |
//! | 1 | bearing tone | a tone at the machine's bearing frequency (a multiple of `f`, 160-270 Hz), amplitude-modulated at `f` |
//! | 2 | impacts | something loose strikes once per shaft turn: each strike rings at a structural resonance (30-40 % of the sample rate) and dies away in about 3 ms |
//! | 3 | dropout | the sensor sticks: a stretch of at least 4 samples holds its first value (flatline, no noise) |

use ndarray::{Array1, Array2};
use ndarray_npy::NpzWriter;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Label of a healthy window.
pub const HEALTHY: i64 = 0;
/// Label of a window with a bearing tone.
pub const BEARING: i64 = 1;
/// Label of a window with impacts.
pub const IMPACTS: i64 = 2;
/// Label of a window with a dropout.
pub const DROPOUT: i64 = 3;
/// The faults' labels, in order.
pub const FAULTS: [i64; 3] = [BEARING, IMPACTS, DROPOUT];

/// One machine: its shaft speed, its harmonics, its bearing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Machine {
    /// What it is.
    pub name: &'static str,
    /// Shaft rotation frequency, Hz.
    pub shaft_hz: f64,
    /// Amplitudes of the 1st, 2nd and 3rd harmonic of the shaft frequency.
    pub amplitudes: [f64; 3],
    /// Their phases relative to the shaft's, radians.
    pub phases: [f64; 3],
    /// Bearing tone frequency over shaft frequency.
    pub bearing_ratio: f64,
}

/// The four machines windows are drawn from, uniformly.
pub const MACHINES: [Machine; 4] = [
    Machine {
        name: "pump",
        shaft_hz: 24.7,
        amplitudes: [1.0, 0.45, 0.20],
        phases: [0.0, 0.9, 2.3],
        bearing_ratio: 7.3,
    },
    Machine {
        name: "fan",
        shaft_hz: 31.3,
        amplitudes: [0.8, 0.60, 0.15],
        phases: [0.0, 2.1, 0.4],
        bearing_ratio: 5.6,
    },
    Machine {
        name: "compressor",
        shaft_hz: 41.9,
        amplitudes: [1.1, 0.25, 0.35],
        phases: [0.0, 1.4, 3.0],
        bearing_ratio: 4.9,
    },
    Machine {
        name: "spindle",
        shaft_hz: 57.3,
        amplitudes: [0.9, 0.50, 0.30],
        phases: [0.0, 0.3, 1.7],
        bearing_ratio: 4.1,
    },
];

/// Shortest dropout, samples.
const MIN_DROPOUT: usize = 4;

/// What to generate. The defaults are the example's.
#[derive(Clone, Debug, PartialEq)]
pub struct VibrationConfig {
    /// Samples per window, `L` (64).
    pub window: usize,
    /// Sample rate, Hz (1000); above twice the highest tone ([`min_rate`]).
    pub rate: f64,
    /// Windows in the training split, all healthy (4000).
    pub train: usize,
    /// Windows in the test split (1000).
    pub test: usize,
    /// Fraction of the test windows that are faulty, spread evenly over the three faults (0.3).
    pub fault_fraction: f64,
    /// Standard deviation of the sensor noise, in units of a typical shaft amplitude (0.25).
    pub noise: f64,
    /// The range each fault's energy is drawn from, uniformly, in units of the noise's expected
    /// energy over a window, `noise² · window` ([1.0, 3.0]).
    pub fault_energy: [f64; 2],
    /// Seed of everything random (1).
    pub seed: u64,
}

impl Default for VibrationConfig {
    fn default() -> VibrationConfig {
        VibrationConfig {
            window: 64,
            rate: 1000.0,
            train: 4000,
            test: 1000,
            fault_fraction: 0.3,
            noise: 0.25,
            fault_energy: [1.0, 3.0],
            seed: 1,
        }
    }
}

/// The lowest sample rate that keeps every tone (the fastest bearing tone with its drift)
/// below the Nyquist frequency, Hz.
pub fn min_rate() -> f64 {
    let top = MACHINES
        .iter()
        .map(|m| m.shaft_hz * m.bearing_ratio.max(3.0))
        .fold(0.0, f64::max);
    // Speed drift is at most +10 %, the bearing's own +3 %.
    2.0 * top * 1.1 * 1.03
}

impl VibrationConfig {
    /// Why this configuration cannot be generated, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.window < 2 * MIN_DROPOUT {
            return Err(format!("a window needs at least {} samples", 2 * MIN_DROPOUT));
        }
        if self.rate.is_nan() || self.rate <= min_rate() {
            return Err(format!(
                "a sample rate of {} Hz aliases the tones: it must exceed {:.0} Hz",
                self.rate,
                min_rate()
            ));
        }
        if self.train == 0 || self.test == 0 {
            return Err("both splits need at least one window".to_string());
        }
        if !(0.0..=1.0).contains(&self.fault_fraction) {
            return Err(format!("a fault fraction of {} is not in [0, 1]", self.fault_fraction));
        }
        let [lo, hi] = self.fault_energy;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi) {
            return Err(format!("a fault energy range of [{lo}, {hi}] is not 0 < low < high"));
        }
        if !self.noise.is_finite() || self.noise <= 0.0 {
            return Err(format!("a noise level of {} is not positive", self.noise));
        }
        Ok(())
    }
}

/// Generated windows, `L` values each, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Vibration {
    /// Samples per window, `L`.
    pub window: usize,
    /// Training windows, healthy: `(train, L)`.
    pub x_train: Vec<f32>,
    /// Their labels, all [`HEALTHY`].
    pub y_train: Vec<i64>,
    /// Test windows: `(test, L)`.
    pub x_test: Vec<f32>,
    /// Their labels: [`HEALTHY`] or the fault's.
    pub y_test: Vec<i64>,
    /// Each test window before its fault (the same window when healthy): what the faults
    /// changed, for checking their energy.
    pub x_test_healthy: Vec<f32>,
}

/// Generates both splits from `config` (which must [`check`](VibrationConfig::check)): the
/// training split from the seed's ChaCha8 stream 0, the test split from stream 1, so each is
/// the same whatever the other's size.
pub fn generate(config: &VibrationConfig) -> Vibration {
    let l = config.window;
    let mut rng = stream(config.seed, 0);
    let mut x_train = Vec::with_capacity(config.train * l);
    for _ in 0..config.train {
        x_train.extend(healthy(config, &mut rng).values.iter().map(|&v| v as f32));
    }

    let mut rng = stream(config.seed, 1);
    let faulty = ((config.fault_fraction * config.test as f64).round() as usize).min(config.test);
    let mut y_test: Vec<i64> = (0..config.test)
        .map(|i| if i < faulty { FAULTS[i % FAULTS.len()] } else { HEALTHY })
        .collect();
    // Fisher-Yates, written out so the order depends on the ChaCha8 stream alone.
    for i in (1..y_test.len()).rev() {
        y_test.swap(i, rng.random_range(0..=i));
    }
    let mut x_test = Vec::with_capacity(config.test * l);
    let mut x_test_healthy = Vec::with_capacity(config.test * l);
    for &label in &y_test {
        let window = healthy(config, &mut rng);
        x_test_healthy.extend(window.values.iter().map(|&v| v as f32));
        let [lo, hi] = config.fault_energy;
        let target = rng.random_range(lo..hi) * config.noise * config.noise * l as f64;
        let mut x = window.values.clone();
        match label {
            BEARING => bearing(&mut x, &window, config.rate, target, &mut rng),
            IMPACTS => impacts(&mut x, &window, config.rate, target, &mut rng),
            DROPOUT => dropout(&mut x, target, &mut rng),
            _ => {}
        }
        x_test.extend(x.iter().map(|&v| v as f32));
    }
    Vibration {
        window: l,
        x_train,
        y_train: vec![HEALTHY; config.train],
        x_test,
        y_test,
        x_test_healthy,
    }
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A healthy window and what a fault needs to know of it.
struct Window {
    values: Vec<f64>,
    machine: &'static Machine,
    /// This window's shaft frequency, Hz.
    shaft_hz: f64,
}

fn healthy(config: &VibrationConfig, rng: &mut ChaCha8Rng) -> Window {
    let machine = &MACHINES[rng.random_range(0..MACHINES.len())];
    let shaft_hz = machine.shaft_hz * (1.0 + 0.02 * normal(rng)).clamp(0.9, 1.1);
    let gain = (0.15 * normal(rng)).exp();
    let (am_hz, am_depth, am_phase) = (
        rng.random_range(0.5..4.0),
        rng.random_range(0.0..0.15),
        rng.random_range(0.0..TAU),
    );
    let phase = rng.random_range(0.0..TAU);
    let jitter: [f64; 3] = std::array::from_fn(|_| 0.15 * normal(rng));
    let dc = 0.05 * normal(rng);
    let values = (0..config.window)
        .map(|k| {
            let t = k as f64 / config.rate;
            let tones: f64 = (0..3)
                .map(|h| {
                    let n = (h + 1) as f64;
                    let angle = TAU * n * shaft_hz * t + n * phase + machine.phases[h] + jitter[h];
                    machine.amplitudes[h] * angle.sin()
                })
                .sum();
            let envelope = 1.0 + am_depth * (TAU * am_hz * t + am_phase).sin();
            dc + gain * envelope * tones + config.noise * normal(rng)
        })
        .collect();
    Window {
        values,
        machine,
        shaft_hz,
    }
}

/// Adds a bearing tone of energy `target`, amplitude-modulated once per shaft turn.
fn bearing(x: &mut [f64], window: &Window, rate: f64, target: f64, rng: &mut ChaCha8Rng) {
    let tone_hz = window.machine.bearing_ratio * window.shaft_hz * (1.0 + 0.01 * normal(rng)).clamp(0.97, 1.03);
    let (modulation_phase, tone_phase) = (rng.random_range(0.0..TAU), rng.random_range(0.0..TAU));
    let tone: Vec<f64> = (0..x.len())
        .map(|k| {
            let t = k as f64 / rate;
            let envelope = 0.5 + 0.5 * (TAU * window.shaft_hz * t + modulation_phase).cos();
            envelope * (TAU * tone_hz * t + tone_phase).sin()
        })
        .collect();
    let energy: f64 = tone.iter().map(|v| v * v).sum();
    let scale = if energy > 0.0 { (target / energy).sqrt() } else { 0.0 };
    for (v, b) in x.iter_mut().zip(&tone) {
        *v += scale * b;
    }
}

/// Adds impacts of energy `target`: something loose strikes once per shaft turn, each strike
/// ringing at a structural resonance (30-40 % of the sample rate, so below the Nyquist
/// frequency whatever the rate) and dying away with a 3 ms time constant.
fn impacts(x: &mut [f64], window: &Window, rate: f64, target: f64, rng: &mut ChaCha8Rng) {
    let resonance_hz = rate * rng.random_range(0.3..0.4);
    let period = 1.0 / window.shaft_hz;
    let first = rng.random_range(0.0..period);
    let ring: Vec<f64> = (0..x.len())
        .map(|k| {
            let t = k as f64 / rate;
            if t < first {
                return 0.0;
            }
            // Time since the latest strike.
            let since = (t - first) % period;
            (-since / 0.003).exp() * (TAU * resonance_hz * since).sin()
        })
        .collect();
    let energy: f64 = ring.iter().map(|v| v * v).sum();
    let scale = if energy > 0.0 { (target / energy).sqrt() } else { 0.0 };
    for (v, r) in x.iter_mut().zip(&ring) {
        *v += scale * r;
    }
}

/// Holds the sensor at one value over a stretch: the longest stretch (at least
/// [`MIN_DROPOUT`] samples) from a random start in the window's first half whose change is
/// within `target`, the start drawn again (up to 16 times) while even the shortest exceeds it,
/// else the start whose shortest stretch changes least.
fn dropout(x: &mut [f64], target: f64, rng: &mut ChaCha8Rng) {
    let l = x.len();
    let change =
        |start: usize, len: usize| -> f64 { x[start..start + len].iter().map(|v| (v - x[start]).powi(2)).sum() };
    let mut best = (f64::INFINITY, 0, MIN_DROPOUT);
    for _ in 0..16 {
        // In the first half, so that the stretch has room to grow.
        let start = rng.random_range(0..=l / 2);
        let mut len = MIN_DROPOUT;
        let energy = change(start, len);
        if energy < best.0 {
            best = (energy, start, len);
        }
        if energy > target {
            continue;
        }
        while start + len < l && change(start, len + 1) <= target {
            len += 1;
        }
        best = (change(start, len), start, len);
        break;
    }
    let (_, start, len) = best;
    let held = x[start];
    for v in &mut x[start..start + len] {
        *v = held;
    }
}

impl Vibration {
    /// Training windows.
    pub fn train_len(&self) -> usize {
        self.y_train.len()
    }

    /// Test windows.
    pub fn test_len(&self) -> usize {
        self.y_test.len()
    }

    /// The test windows' anomaly labels, as the files hold them: 0 healthy, 1 faulty (whatever
    /// the fault; [`Vibration::y_test`] names it).
    pub fn anomaly_test(&self) -> Vec<i64> {
        self.y_test.iter().map(|&y| i64::from(y != HEALTHY)).collect()
    }

    /// Writes `x_train`, `y_train`, `x_test`, `y_test` (f32 windows `(n, L)`, i64 anomaly labels:
    /// 0 healthy, 1 faulty) and `fault_test` (i64, the fault: [`Vibration::y_test`]) as an
    /// uncompressed `.npz`, as numpy's `np.savez` does.
    pub fn write_npz(&self, path: &Path) -> std::io::Result<()> {
        let l = self.window;
        let x = |v: &[f32], n: usize| Array2::from_shape_vec((n, l), v.to_vec()).map_err(std::io::Error::other);
        let mut npz = NpzWriter::new(std::fs::File::create(path)?);
        npz.add_array("x_train", &x(&self.x_train, self.train_len())?)
            .map_err(std::io::Error::other)?;
        npz.add_array("y_train", &Array1::from(self.y_train.clone()))
            .map_err(std::io::Error::other)?;
        npz.add_array("x_test", &x(&self.x_test, self.test_len())?)
            .map_err(std::io::Error::other)?;
        npz.add_array("y_test", &Array1::from(self.anomaly_test()))
            .map_err(std::io::Error::other)?;
        npz.add_array("fault_test", &Array1::from(self.y_test.clone()))
            .map_err(std::io::Error::other)?;
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Writes one split as CSV: a header `s0,...,s{L-1},label`, then one window per line, values
    /// in Rust's shortest f32 text (they read back bit for bit), the label the anomaly label (0
    /// healthy, 1 faulty).
    pub fn write_csv(&self, path: &Path, test: bool) -> std::io::Result<()> {
        let anomaly = self.anomaly_test();
        let (x, y) = if test {
            (&self.x_test, &anomaly)
        } else {
            (&self.x_train, &self.y_train)
        };
        let mut text: String = (0..self.window).map(|i| format!("s{i},")).collect();
        text.push_str("label\n");
        for (row, label) in x.chunks_exact(self.window).zip(y) {
            for v in row {
                write!(text, "{v},").expect("writing to a String");
            }
            writeln!(text, "{label}").expect("writing to a String");
        }
        std::fs::write(path, text)
    }

    /// Writes `vibration.npz`, `vibration_train.csv` and `vibration_test.csv` into `dir`
    /// (created if need be); returns their paths.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let paths = ["vibration.npz", "vibration_train.csv", "vibration_test.csv"].map(|n| dir.join(n));
        self.write_npz(&paths[0])?;
        self.write_csv(&paths[1], false)?;
        self.write_csv(&paths[2], true)?;
        Ok(paths.to_vec())
    }
}
