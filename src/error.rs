//! The crate's one error type.

/// Everything that can go wrong in `localprop`, each variant naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of its allowed range; names the field, the value and what is allowed.
    #[error("invalid parameter `{field}` = {value}: {allowed}")]
    Param {
        /// The parameter's name, as in the docs and experiment files (`tau`, `c[3]`, `policy.frequency`).
        field: String,
        /// The offending value, printed.
        value: String,
        /// What would have been accepted.
        allowed: String,
    },
    /// The network description is inconsistent (bad index, duplicate edge, edge into an input).
    #[error("invalid network: {0}")]
    Network(String),
    /// An input, target or mask stream has the wrong size or produced a bad value.
    #[error("stream `{stream}` (replica {replica}): {message}")]
    Stream {
        /// Which stream: `input`, `target` or `mask`.
        stream: &'static str,
        /// The replica the stream belongs to.
        replica: usize,
        /// What was wrong, with the step and value where there is one.
        message: String,
    },
    /// A state handed to the engine does not fit its network or replica count.
    #[error("state does not fit the engine: {0}")]
    State(String),
    /// The dynamics left the finite range of f32 (a blow-up, usually from a bad policy or step).
    #[error(
        "the run diverged: {quantity} is {value} at step {step} (replica {replica}); \
         try a smaller tau, c tau, a larger theta, or another sign policy"
    )]
    Diverged {
        /// What became non-finite: a recorded `loss`, `lagrangian` or `hamiltonian`, or the
        /// state `x`, `p`, `w` or `pw` at the end of a run.
        quantity: &'static str,
        /// Its value (NaN or infinity).
        value: f32,
        /// The step at which it was recorded.
        step: u64,
        /// The replica that diverged.
        replica: usize,
    },
    /// A data file could not be read or parsed.
    #[error("data `{path}`: {message}")]
    Data {
        /// The file.
        path: String,
        /// What was wrong, with the line where there is one.
        message: String,
    },
    /// No GPU adapter was found (or none matched `WGPU_ADAPTER_NAME`).
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    /// The GPU device could not be created, or was lost.
    #[error("GPU device: {0}")]
    Device(String),
    /// A buffer or dispatch exceeds a limit of the device.
    #[error(
        "{what} needs {asked} but the device allows {limit} (limit `{limit_name}`); use fewer replicas, \
         a smaller network or block, or a device with larger limits"
    )]
    Limit {
        /// What was being sized (`weights buffer`, `state_step dispatch`...).
        what: String,
        /// The amount asked for.
        asked: u64,
        /// The device's limit.
        limit: u64,
        /// The wgpu limit's name.
        limit_name: &'static str,
    },
    /// A wgpu validation or out-of-memory error, with the kernel or operation it came from.
    #[error("GPU error in `{kernel}`: {message}")]
    Gpu {
        /// The kernel's stem or the operation (`upload`, `readback`...).
        kernel: String,
        /// wgpu's description.
        message: String,
    },
    /// The call needs the GPU backend but the engine runs on the CPU.
    #[error("`{0}` needs the GPU backend; this engine runs on the CPU")]
    NeedsGpu(&'static str),
    /// An experiment file is malformed or holds a bad value; names the file, the key path
    /// (`params.r`), the value and what is allowed.
    #[error("{file}: `{key}`: {message}")]
    Config {
        /// The experiment file (or `<checkpoint>` for a configuration read from one).
        file: String,
        /// The key path, dotted (`network.sizes`, `sweep.q[2]`).
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// An I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Param`] from anything printable.
    pub fn param(field: impl Into<String>, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        Error::Param { field: field.into(), value: value.to_string(), allowed: allowed.into() }
    }
}
