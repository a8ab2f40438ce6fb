//! Kernels: source, configuration, build and the content-addressed cache.
//!
//! A kernel is identified by what went into it (source identity, arch,
//! toolchain, resolved .config), never by its variant's name: renaming a
//! variant costs nothing, changing one option rebuilds.

pub mod arch;
pub mod build;
pub mod config;
pub mod source;
pub mod variant;

pub use build::{ensure, Kernel};
