//! Integration tests live in main.rs and its modules; this empty library only anchors the crate.
