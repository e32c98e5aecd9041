//! The Python package `localprop`: this crate is its extension module, `localprop._localprop`,
//! built into a wheel by maturin (`pip install ./python`, see `python/pyproject.toml`).
//! `localprop/__init__.py` re-exports what is defined here, `localprop/_localprop.pyi` types it.
//!
//! - `network`: `Network`, built by the engine's [`localprop::NetworkSpec`] builders;
//! - `params`: `Params`, the engine's [`localprop::Params`] with its names and checks;
//! - `engine`: `Engine`, `Trace`, `State` over [`localprop::Engine`];
//! - `streams`: numpy arrays and Python callables as the engine's streams;
//! - `files`: experiment files (the command line's runner) and checkpoints.
//!
//! Every engine error becomes `localprop.LocalpropError` (a `ValueError`) with the engine's
//! message. The GIL is released while the engine steps; it is taken back only to call a
//! Python callable (a stream) and, once per block of steps, to let Ctrl-C through.

mod engine;
mod files;
mod network;
mod params;
mod streams;

use pyo3::prelude::*;

pyo3::create_exception!(
    localprop,
    LocalpropError,
    pyo3::exceptions::PyValueError,
    "An error of the localprop engine or of the arguments handed to it; the message names what was wrong \
     (the field, the value, what is allowed)."
);

/// An engine error as the Python exception, with the engine's message.
pub(crate) fn raise(e: localprop::Error) -> PyErr {
    LocalpropError::new_err(e.to_string())
}

/// A `LocalpropError` with a message of this crate's own (argument shapes, missing arguments).
pub(crate) fn error(message: impl Into<String>) -> PyErr {
    LocalpropError::new_err(message.into())
}

/// `?` on engine results inside functions that return `PyResult`.
pub(crate) trait OrRaise<T> {
    /// The value, or the error as a `LocalpropError`.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for localprop::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(raise)
    }
}

/// The module `localprop._localprop`.
#[pymodule]
fn _localprop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LocalpropError", m.py().get_type::<LocalpropError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<network::PyNetwork>()?;
    m.add_class::<params::PyParams>()?;
    m.add_class::<engine::PyEngine>()?;
    m.add_class::<engine::PyTrace>()?;
    m.add_class::<engine::PyState>()?;
    m.add_class::<files::PyCheckpoint>()?;
    m.add_function(wrap_pyfunction!(files::run_file, m)?)?;
    m.add_function(wrap_pyfunction!(files::load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(files::merge, m)?)?;
    Ok(())
}
