//! scenarios (under construction).
