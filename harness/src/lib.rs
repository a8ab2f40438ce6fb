//! bounce: a QEMU-backed test harness and benchmark suite for the Linux
//! software IO TLB (swiotlb), fixed vs dynamically allocated pools.
//!
//! Data flows one way: `kernel` builds, `rootfs` packs, `guest` boots and
//! collects, `workload` parses and judges, `results` stores, `stats` and
//! `report` compare. `matrix` drives it all.

pub mod bench;
pub mod bisect;
pub mod failure;
pub mod guest;
pub mod host;
pub mod kernel;
pub mod lock;
pub mod matrix;
pub mod paths;
pub mod report;
pub mod results;
pub mod rootfs;
pub mod stats;
pub mod ui;
pub mod workload;
pub mod yaml;
