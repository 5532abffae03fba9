//! Server-Sent Events for Armature Realtime. (Being built.)

pub use armature_realtime_error::{Error, Result};
