//! Fuzzes upgrade-request validation: the input is a list of `name: value` lines (the first
//! line picks method and version); whatever the headers, validation must not panic, and an
//! accepted request must yield a 101 response whose accept key matches its key.
#![no_main]

use armature_ws_core::handshake::{check_response, response, validate_request};
use http::{HeaderName, HeaderValue, Method, Request, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut request = Request::new(());
    *request.method_mut() = if first.first().is_some_and(|b| b % 4 == 0) {
        Method::POST
    } else {
        Method::GET
    };
    *request.version_mut() = match first.get(1).map(|b| b % 3) {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        request.headers_mut().append(name, value);
    }
    match validate_request(&request) {
        Ok(client) => {
            let protocols: Vec<&str> = client.protocols.iter().map(String::as_str).collect();
            let chosen = client.select_protocol(&protocols);
            let answer = response(&client, chosen);
            assert_eq!(answer.status(), 101);
            let checked = check_response(&answer, &client.key, &protocols);
            if chosen.is_some_and(|p| HeaderValue::from_str(p).is_ok()) {
                assert_eq!(checked.ok().flatten().as_deref(), chosen);
            } else {
                assert!(checked.is_ok());
            }
        }
        Err(err) => {
            let status = err.to_response().status();
            assert!(status == 400 || status == 426);
        }
    }
});
