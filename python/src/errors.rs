//! Runtime errors as Python exceptions: `Error`, and below it `PipelineError` (with `file`,
//! `line` and `column` where the problem has a place in a file), `InputError`,
//! `ProtocolError` and `PeerError`. What an error is depends on when it happened: loading and
//! planning give pipeline errors, encoding the inputs input errors, and a run protocol or peer
//! errors.

use mpcflow_runtime::{Error as RuntimeError, Site};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(_mpcflow, Error, PyException, "Anything mpcflow refuses or that fails in a run.");
pyo3::create_exception!(
    _mpcflow,
    PipelineError,
    Error,
    "A pipeline that cannot be read, validated or planned; `file`, `line` and `column` say where."
);
pyo3::create_exception!(_mpcflow, InputError, Error, "An input value that is missing or does not fit its declaration.");
pyo3::create_exception!(
    _mpcflow,
    ProtocolError,
    Error,
    "A protocol, its dealer or one of its nodes failed while running."
);
pyo3::create_exception!(
    _mpcflow,
    PeerError,
    Error,
    "A channel between parties failed, a wait timed out, or parties disagree on the session."
);

/// When the error happened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading, validating or planning the pipeline.
    Load,
    /// Encoding the inputs against their declarations.
    Inputs,
    /// Planning with the inputs' shapes: a problem at an input is the data's.
    Shapes,
    /// Running.
    Run,
}

/// `file:line:column` at the start of `text` (the form every located message has), if any.
pub fn location(text: &str) -> Option<(String, u32, u32)> {
    // The file may itself hold colons; the line and column are the first two numbers after one.
    let mut from = 0;
    while let Some(i) = text[from..].find(':').map(|i| from + i) {
        let rest = &text[i + 1..];
        let mut parts = rest.splitn(3, ':');
        if let (Some(l), Some(c)) = (parts.next(), parts.next())
            && let (Ok(line), Ok(column)) = (l.parse::<u32>(), c.trim_end().parse::<u32>())
            && i > 0
        {
            return Some((text[..i].to_string(), line, column));
        }
        from = i + 1;
    }
    None
}

/// A `PipelineError` whose `file`, `line` and `column` come from the message's location.
pub fn pipeline_error(py: Python<'_>, message: String) -> PyErr {
    let err = PipelineError::new_err(message.clone());
    let (file, line, column) = match location(&message) {
        Some((f, l, c)) => (Some(f), Some(l), Some(c)),
        None => (None, None, None),
    };
    let value = err.value(py);
    // Setting attributes on a fresh exception object does not fail; if it did, the exception
    // would still say where in its message.
    let _ = value.setattr("file", file);
    let _ = value.setattr("line", line);
    let _ = value.setattr("column", column);
    err
}

/// The exception for `e`, raised at `stage`.
pub fn to_py(e: &RuntimeError, stage: Stage) -> PyErr {
    let message = e.to_string();
    match (e, stage) {
        (RuntimeError::Input { .. }, _) | (RuntimeError::Invalid(_), Stage::Inputs | Stage::Run) => {
            InputError::new_err(message)
        }
        (RuntimeError::Invalid(problems), Stage::Shapes)
            if problems.iter().any(|p| matches!(p.site, Site::Input(_) | Site::InputOwner(_))) =>
        {
            InputError::new_err(message)
        }
        (RuntimeError::Parse(_) | RuntimeError::Invalid(_), _) => Python::attach(|py| pipeline_error(py, message)),
        (RuntimeError::Transport { .. } | RuntimeError::PeerFailed { .. } | RuntimeError::Handshake { .. }, _) => {
            PeerError::new_err(message)
        }
        (RuntimeError::Node { .. } | RuntimeError::Dealer(_) | RuntimeError::Internal(_), _) => {
            ProtocolError::new_err(message)
        }
        _ => Error::new_err(message),
    }
}

/// An error opening a deployment's process: about the pipeline file (a `PipelineError`) or
/// about the deployment (an `Error`).
pub fn opening(pipeline: &std::path::Path, message: String) -> PyErr {
    if message.starts_with(&pipeline.display().to_string()) {
        Python::attach(|py| pipeline_error(py, message))
    } else {
        Error::new_err(message)
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("PipelineError", py.get_type::<PipelineError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    m.add("PeerError", py.get_type::<PeerError>())?;
    Ok(())
}
