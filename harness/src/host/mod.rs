//! The host: the tools it must have, the accelerator it really offers, and
//! the facts about it that every result records.

pub mod accel;
pub mod apt;
pub mod cmd;
pub mod env;
pub mod sev;
pub mod tools;
