//! One guest's life: command line, channels, QMP, and the state machine
//! that the progress display and the results both read.

pub mod channel;
pub mod interactive;
pub mod machine;
pub mod profile;
pub mod qemu;
pub mod qmp;
