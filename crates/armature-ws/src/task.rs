//! The connection task: one future per connection that drives the socket and polls the
//! handler's future inside it.
//!
//! Every poll drives the socket first (writes what is queued, reads into the inbox,
//! answers pings, runs the close handshake), then polls the handler if its own waker was
//! woken, then drives the socket again if the handler queued something meanwhile. The
//! handler's `.await`s therefore never hold the socket up: whatever the handler waits for,
//! the connection's wakers (the socket, the send queue, the inbox) wake this task and the
//! driver runs; and the wakes that only concern the socket (a broadcast queued, the peer
//! readable) do not poll the handler.
//!
//! The handler is polled with a waker made of the connection's `Shared` (no allocation):
//! waking it sets `Shared::handler_woken`, then wakes this task.
//!
//! A panic in the handler is caught here: the handler future is dropped, the connection
//! closes with 1011 and the task goes on until the socket is closed.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::burst;
use crate::driver::Conn;
use crate::outcome::{HandlerOutcome, internal_error_close, panic_message};
use crate::queue::{CloseRequest, Shared};
use crate::stats::Stats;

pin_project! {
    /// Drives one connection and runs its handler. `G` is held while the connection is
    /// open (the hub's registration) and dropped when the socket closes, even if the
    /// handler is still running.
    pub(crate) struct ConnectionTask<Fut, G> {
        // The driver's state stays (its socket closed, its buffers freed) until the task
        // ends: the handler reaches the connection's `Shared` through it.
        conn: Conn,
        guard: Option<G>,
        #[pin]
        handler: Option<Fut>,
    }
}

impl<Fut, G> ConnectionTask<Fut, G>
where
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    pub(crate) fn new(conn: Conn, guard: G, handler: Option<Fut>) -> Self {
        ConnectionTask {
            conn,
            guard: Some(guard),
            handler,
        }
    }
}

impl<Fut, G> Future for ConnectionTask<Fut, G>
where
    Fut: Future,
    Fut::Output: HandlerOutcome,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let handler_alive = this.handler.is_some();
        drive(this.conn, this.guard, cx, handler_alive);
        if !handler_alive {
            return if this.conn.is_done() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        let conn_done = this.conn.is_done();
        let shared: &Arc<Shared> = &this.conn.shared;
        if conn_done {
            // No driver registers the task any more: the handler's waker wakes it through
            // this registration.
            shared.register(cx.waker());
        }
        for turn in 1..=HANDLER_TURNS {
            let shared: &Arc<Shared> = &this.conn.shared;
            if !shared.handler_woken.swap(false, Ordering::SeqCst) {
                break;
            }
            let Some(handler) = this.handler.as_mut().as_pin_mut() else {
                break;
            };
            let waker = Waker::from(shared.clone());
            let mut handler_cx = Context::from_waker(&waker);
            shared.enter_handler();
            // Room broadcasts the handler makes in this poll are held and delivered as
            // one run per member when it returns (see `burst`), before the socket is
            // driven again.
            let polled =
                burst::holding(|| catch_unwind(AssertUnwindSafe(|| handler.poll(&mut handler_cx))));
            let mut again = shared.leave_handler();
            match polled {
                Ok(Poll::Pending) => {}
                Ok(Poll::Ready(outcome)) => {
                    drop_handler(this.handler.as_mut());
                    finished(shared, outcome.failure());
                    again = true;
                }
                Err(payload) => {
                    drop_handler(this.handler.as_mut());
                    panicked(shared, panic_message(payload.as_ref()));
                    again = true;
                }
            }
            if !again {
                break;
            }
            // The handler woke itself (e.g. `yield_now`): that wake already scheduled the
            // task, so it is polled in its next turn, not now.
            let self_woken = shared.handler_woken.load(Ordering::SeqCst);
            // The handler made room in a full inbox or sent something: drive the socket
            // again. Messages it reads now go to the handler in another turn of this
            // loop rather than a task wake (which would put the connection behind every
            // other task of the thread: a publisher reading 16 messages per turn of the
            // whole runtime, each broadcast to every member); on the last turn a message
            // read wakes the task as usual.
            let next = !self_woken && turn < HANDLER_TURNS && this.handler.is_some();
            drive(this.conn, this.guard, cx, next);
            if !next {
                break;
            }
        }
        if this.conn.is_done() && this.handler.is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// How many times one poll of the task may poll the handler when the socket keeps
/// delivering messages to it (each turn takes at most an inbox of them), before the task
/// yields to the rest of the thread.
const HANDLER_TURNS: u32 = 4;

/// Drives the socket; frees the guard once the connection is over (the driver closed the
/// socket and freed its buffers then).
fn drive<G>(conn: &mut Conn, guard: &mut Option<G>, cx: &mut Context<'_>, next: bool) {
    if !conn.is_done() && conn.poll_drive(cx, next).is_ready() {
        conn.finish();
        *guard = None;
    }
}

/// Drops the handler's future; a panic while dropping it is contained too.
fn drop_handler<Fut>(mut handler: Pin<&mut Option<Fut>>) {
    let _ = catch_unwind(AssertUnwindSafe(|| handler.set(None)));
}

fn finished(shared: &Shared, failure: Option<String>) {
    let Some(failure) = failure else {
        return;
    };
    tracing::warn!(id = %shared.id, error = %failure, "websocket handler failed; closing with 1011");
    Stats::bump(&shared.stats.handler_errors);
    shared.request_close(CloseRequest::Graceful(internal_error_close(&failure)));
}

fn panicked(shared: &Shared, message: &str) {
    tracing::warn!(id = %shared.id, panic = %message, "websocket handler panicked; closing with 1011");
    Stats::bump(&shared.stats.handler_panics);
    shared.request_close(CloseRequest::Graceful(internal_error_close(
        "handler panicked",
    )));
}
