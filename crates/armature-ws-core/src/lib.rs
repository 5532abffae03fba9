//! Sans-I/O RFC 6455: the WebSocket protocol without sockets or a runtime.
//!
//! Bytes go in, messages and encoded frames come out. (Being built.)
