//! Sigma engine.
