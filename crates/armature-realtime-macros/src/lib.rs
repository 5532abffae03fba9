//! The decorators of Armature Realtime: `#[websocket("/path")]`, `#[sse("/path")]`,
//! `#[controller("/prefix")]`, `#[injectable]` and `#[module(..)]`.
//!
//! Use them through the facade crate `armature-realtime`, whose prelude re-exports them; the
//! code they generate names only public paths of the facade. They are being built (see the
//! project's issue tracker); this crate currently exports nothing.
