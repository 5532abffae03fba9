//! An echo server made of `armature-ws-core` alone (std threads, blocking sockets), with
//! permessage-deflate: the sans-I/O core's own target for the Autobahn suite, before any
//! runtime is involved.
//!
//! ```text
//! cargo run --release -p armature-ws-core --example deflate_echo -- 9002 [shared|dedicated|off]
//! ../shared/autobahn/run.sh ws://127.0.0.1:9002/ '12.*,13.*'
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use armature_ws_core::bytes::BytesMut;
use armature_ws_core::compression::Compressor;
use armature_ws_core::handshake::{self, validate_request};
use armature_ws_core::permessage_deflate::DeflateConfig;
use armature_ws_core::{
    CloseFrame, Config, Decoder, Role, WebSocketMessage, encode_close, encode_message,
    encode_message_deflated, encode_message_shared,
};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port = args.get(1).map_or("9002", String::as_str);
    let mode = args.get(2).cloned().unwrap_or_else(|| "shared".into());
    let deflate = match mode.as_str() {
        "off" => None,
        "dedicated" => Some(DeflateConfig::dedicated(15).min_size(0)),
        _ => Some(DeflateConfig::shared().min_size(0)),
    };
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            let _ = serve(stream, deflate);
        });
    }
    Ok(())
}

fn serve(mut tcp: TcpStream, deflate: Option<DeflateConfig>) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    // The request head, parsed by httparse.
    let (request, used) = loop {
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(used)) = req.parse(&buf) {
            let mut builder = http::Request::builder()
                .method(req.method.unwrap_or("GET"))
                .uri(req.path.unwrap_or("/"))
                .version(http::Version::HTTP_11);
            for h in req.headers.iter() {
                builder = builder.header(h.name, h.value);
            }
            break (builder.body(()).map_err(std::io::Error::other)?, used);
        }
    };
    let _ = buf.split_to(used);
    let client = match validate_request(&request) {
        Ok(client) => client,
        Err(err) => {
            let head = format!(
                "HTTP/1.1 {} Bad Request\r\ncontent-length: 0\r\n\r\n",
                err.status().as_u16()
            );
            return tcp.write_all(head.as_bytes());
        }
    };
    let params = deflate
        .as_ref()
        .and_then(|config| client.negotiate_deflate(config));
    let response = handshake::response_with_deflate(&client, None, params.as_ref());
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in response.headers() {
        head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap_or("")));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;

    let mut decoder = Decoder::new(Config::server());
    let mut own: Option<Compressor> = None;
    let level = deflate.map_or(6, |d| d.level);
    if let Some(params) = params {
        decoder = decoder.with_deflate(params.incoming(Role::Server));
        let out = params.outgoing(Role::Server);
        if !out.no_context_takeover {
            own = Some(Compressor::new(out.window_bits, level, false));
        }
    }
    loop {
        loop {
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(err) => {
                    let close = CloseFrame::new(err.close_code(), "");
                    let _ = tcp.write_all(&encode_close(Some(&close)));
                    return Ok(());
                }
            };
            let frame = match msg {
                WebSocketMessage::Ping(data) => encode_message(&WebSocketMessage::Pong(data)),
                WebSocketMessage::Pong(_) => continue,
                WebSocketMessage::Close => {
                    tcp.write_all(&encode_close(decoder.close_frame()))?;
                    return Ok(());
                }
                data => match (params, own.as_mut()) {
                    (None, _) => encode_message(&data),
                    (Some(_), Some(compressor)) => {
                        encode_message_deflated(&data, compressor).unwrap_or_default()
                    }
                    (Some(p), None) => {
                        let out = p.outgoing(Role::Server);
                        encode_message_shared(&data, out.window_bits, level).unwrap_or_default()
                    }
                },
            };
            tcp.write_all(&frame)?;
        }
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
