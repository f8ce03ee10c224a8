//! Cross-crate tests of mpcflow: pipeline files, the scheduler, the CLI and embedding.

mod bad_files;
mod cli;
mod fss2pc;
mod fuzz;
mod graphs;
mod kernels;
mod local;
mod material;
mod models;
mod multiprocess;
mod onnx;
mod onnx_conformance;
mod owners;
mod pipelines;
mod plugins;
mod privacy;
mod python;
mod remote;
mod scheduler;
mod support;
mod tcp;
