//! The WebSocket server of Armature Realtime on tokio and hyper 1. (Being built.)

pub use armature_realtime_error::{Error, Result};
