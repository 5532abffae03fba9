//! Shared by the decoder targets: decode the input whole and in reads of a size taken from
//! its first byte, and require the same messages and the same error either way.

use armature_ws_core::{CloseFrame, Config, Decoder, Error, WebSocketMessage, bytes::BytesMut};

fn decode(
    config: Config,
    data: &[u8],
    read: usize,
) -> (Vec<WebSocketMessage>, Option<Error>, Option<CloseFrame>) {
    let mut decoder = Decoder::new(config);
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(read.max(1)) {
        src.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => break,
                Err(err) => return (out, Some(err), decoder.close_frame().cloned()),
            }
        }
    }
    (out, None, decoder.close_frame().cloned())
}

pub fn check(config: Config, data: &[u8]) {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let config = config.max_frame_size(1 << 16).max_message_size(1 << 17);
    let whole = decode(config, data, data.len());
    let split = decode(config, data, usize::from(first % 32) + 1);
    assert_eq!(whole, split, "result depends on the read split");
    for msg in &whole.0 {
        if msg.is_control() {
            assert!(msg.len() <= 125, "control payload over 125 bytes");
        }
    }
    if let Some(close) = &whole.2 {
        assert!(
            close.code.is_allowed(),
            "close code not allowed on the wire"
        );
    }
}
