//! The async NATS client used by the `nats` CLI and the tests.
