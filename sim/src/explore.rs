//! explore (todo)
