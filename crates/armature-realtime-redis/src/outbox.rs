//! The outbox: messages numbered and waiting for the link task to publish them. Bounded in
//! messages and bytes; pushing never waits.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::envelope::{self, Kind};
use crate::sequence::Sequencer;

/// One message for Redis: the channel and the encoded envelope (and, for a durable
/// stream, the stream it is appended to first).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) channel: Arc<str>,
    pub(crate) envelope: Bytes,
    pub(crate) durable: Option<Arc<crate::routes::DurableChannel>>,
    /// Set once Redis took it (on a cluster part of a batch can succeed while another
    /// shard fails: that part is not sent again).
    pub(crate) done: Arc<std::sync::atomic::AtomicBool>,
    /// For a durable message: this node's publish number, increasing in queue order, so
    /// the stream's script appends a message sent again (a pipeline cut after Redis ran
    /// part of it) only once.
    pub(crate) publish_id: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    bytes: usize,
    /// The last durable publish number given.
    publish_ids: u64,
    sequencer: Sequencer,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    max_messages: usize,
    max_bytes: usize,
    /// Woken when a message is queued.
    pub(crate) ready: Notify,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            max_messages,
            max_bytes,
            ready: Notify::new(),
        }
    }

    /// Numbers the message on its channel and queues it (`epoch`'s high 32 bits name the
    /// process; the low ones become the channel's numbering epoch, see
    /// [`Sequencer`]). The number is taken even when the
    /// outbox is full, so the message's loss shows as a gap on the other nodes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &self,
        channel: &Arc<str>,
        kind: Kind,
        origin: &str,
        epoch: u64,
        tag: Option<&str>,
        payload: &[u8],
    ) -> Result<(), Full> {
        self.push_to(channel, kind, origin, epoch, tag, payload, None)
    }

    /// [`Outbox::push`], for a durable stream when `durable` is set: the stream's script
    /// numbers the message then, not the sequencer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_to(
        &self,
        channel: &Arc<str>,
        kind: Kind,
        origin: &str,
        epoch: u64,
        tag: Option<&str>,
        payload: &[u8],
        durable: Option<Arc<crate::routes::DurableChannel>>,
    ) -> Result<(), Full> {
        let mut st = self.state.lock();
        if durable.is_some() {
            let size = payload.len() + 23 + origin.len() + tag.map_or(0, str::len);
            if st.queue.len() >= self.max_messages || st.bytes + size > self.max_bytes {
                return Err(Full);
            }
            let envelope = envelope::encode(kind, origin, 0, 0, tag, payload);
            st.bytes += envelope.len();
            st.publish_ids += 1;
            let publish_id = st.publish_ids;
            st.queue.push_back(Outgoing {
                channel: channel.clone(),
                envelope,
                durable,
                done: Default::default(),
                publish_id,
            });
            drop(st);
            self.ready.notify_one();
            return Ok(());
        }
        let (numbering, seq) = st.sequencer.next(channel, std::time::Instant::now());
        // The process's incarnation in the high half, the channel's numbering in the low.
        let epoch = (epoch & !0xffff_ffff) | u64::from(numbering);
        let size = payload.len() + 23 + origin.len() + tag.map_or(0, str::len);
        if st.queue.len() >= self.max_messages || st.bytes + size > self.max_bytes {
            return Err(Full);
        }
        let envelope = envelope::encode(kind, origin, epoch, seq, tag, payload);
        st.bytes += envelope.len();
        st.queue.push_back(Outgoing {
            channel: channel.clone(),
            envelope,
            durable: None,
            done: Default::default(),
            publish_id: 0,
        });
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// Copies (reference counts) up to `max` messages from the front, leaving them queued
    /// until [`Outbox::confirm`]: a batch lost with the link is sent again on the next one.
    pub(crate) fn peek(&self, max: usize) -> Vec<Outgoing> {
        self.state.lock().queue.iter().take(max).cloned().collect()
    }

    /// Removes the first `n` messages (Redis took them).
    pub(crate) fn confirm(&self, n: usize) {
        let mut st = self.state.lock();
        for _ in 0..n {
            match st.queue.pop_front() {
                Some(m) => st.bytes -= m.envelope.len(),
                None => break,
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Channels with a sequence counter.
    pub(crate) fn sequence_channels(&self) -> usize {
        self.state.lock().sequencer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::decode;

    #[test]
    fn bounded_in_messages_and_numbers_every_message() {
        let outbox = Outbox::new(2, 1 << 20);
        let ch: Arc<str> = Arc::from("c");
        let frame = [0x81, 1, b'x'];
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
        assert_eq!(
            outbox.push(&ch, Kind::Room, "n-", 1, None, &frame),
            Err(Full)
        );
        let batch = outbox.peek(10);
        assert_eq!(batch.len(), 2);
        outbox.confirm(2);
        assert_eq!(outbox.len(), 0);
        // The dropped message kept number 3, so the next is 4: receivers see the gap.
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
        let env = decode(outbox.peek(1)[0].envelope.clone()).unwrap();
        assert_eq!(env.seq, 4);
    }

    #[test]
    fn bounded_in_bytes() {
        let outbox = Outbox::new(100, 300);
        let ch: Arc<str> = Arc::from("c");
        let mut frame = vec![0x82, 100];
        frame.extend([0u8; 100]);
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
        assert_eq!(
            outbox.push(&ch, Kind::Room, "n-", 1, None, &frame),
            Err(Full)
        );
        outbox.confirm(1);
        assert!(outbox.push(&ch, Kind::Room, "n-", 1, None, &frame).is_ok());
    }
}
