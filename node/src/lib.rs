//! node (under construction).
