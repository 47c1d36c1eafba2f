//! sim (under construction).
pub mod linearizability;
