//! Cross-crate tests of mpcflow: pipeline files, the scheduler, the CLI and embedding.

mod bad_files;
mod cli;
mod fss2pc;
mod material;
mod pipelines;
mod privacy;
mod scheduler;
mod support;
mod tcp;
