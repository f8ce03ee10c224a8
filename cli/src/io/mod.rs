//! Getting values in and out of the command line: `--input` arguments, `.npy`, CSV and JSON
//! files, and printing outputs.

pub mod input_arg;
pub mod json;
pub mod npy;
pub mod print;
