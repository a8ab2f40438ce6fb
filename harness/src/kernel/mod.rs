//! Kernels: source, patch series, configuration, build and the
//! content-addressed cache.
//!
//! A kernel is identified by what went into it (source identity, series,
//! arch, toolchain, resolved .config), never by its variant's name:
//! renaming a variant costs nothing, changing one option rebuilds, and two
//! variants that differ only in boot options share one build.

pub mod arch;
pub mod build;
pub mod cache;
pub mod config;
mod make;
pub mod series;
pub mod source;
pub mod variant;

pub use build::ensure;
pub use cache::Kernel;
