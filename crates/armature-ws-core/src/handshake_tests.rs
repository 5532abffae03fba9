//! Handshake tests, grouped by RFC 6455 section.

use http::Request;

use super::*;

/// RFC 6455 §1.3's example request, as a builder to vary.
fn example() -> http::request::Builder {
    Request::get("/chat")
        .header("Host", "server.example.com")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Origin", "http://example.com")
        .header("Sec-WebSocket-Protocol", "chat, superchat")
        .header("Sec-WebSocket-Version", "13")
}

fn without(name: &str) -> Request<()> {
    let mut req = example().body(()).unwrap();
    req.headers_mut().remove(name);
    req
}

fn with(name: &'static str, value: &'static str) -> Request<()> {
    let mut req = example().body(()).unwrap();
    req.headers_mut()
        .insert(name, HeaderValue::from_static(value));
    req
}

mod rfc6455_1_3_and_4_2_2_accept {
    use super::*;

    #[test]
    fn accept_key_from_the_rfc() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn example_request_is_valid_and_answered() {
        let client = validate_request(&example().body(()).unwrap()).unwrap();
        assert_eq!(client.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(client.protocols, ["chat", "superchat"]);
        assert_eq!(client.origin.as_deref(), Some("http://example.com"));
        assert_eq!(client.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

        let res = response(&client, None);
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(res.headers()["upgrade"], "websocket");
        assert_eq!(res.headers()["connection"], "Upgrade");
        assert_eq!(
            res.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(res.headers().get("sec-websocket-protocol").is_none());
    }
}

mod rfc6455_4_2_1_request_checks {
    use super::*;

    #[test]
    fn method_must_be_get() {
        let mut req = example().body(()).unwrap();
        *req.method_mut() = Method::POST;
        assert_eq!(validate_request(&req), Err(HandshakeError::MethodNotGet));
        assert_eq!(
            HandshakeError::MethodNotGet.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn http_version_must_be_at_least_1_1() {
        for (version, ok) in [
            (Version::HTTP_09, false),
            (Version::HTTP_10, false),
            (Version::HTTP_11, true),
        ] {
            let mut req = example().body(()).unwrap();
            *req.version_mut() = version;
            assert_eq!(validate_request(&req).is_ok(), ok, "{version:?}");
        }
        let mut req = example().body(()).unwrap();
        *req.version_mut() = Version::HTTP_10;
        assert_eq!(validate_request(&req), Err(HandshakeError::HttpVersion));
    }

    #[test]
    fn upgrade_and_connection_are_case_insensitive_token_lists() {
        assert!(validate_request(&with("upgrade", "WebSocket")).is_ok());
        assert!(validate_request(&with("upgrade", "h2c, websocket")).is_ok());
        assert!(validate_request(&with("connection", "keep-alive, UPGRADE")).is_ok());
        assert!(validate_request(&with("connection", "upgrade,keep-alive")).is_ok());
        let mut req = with("connection", "keep-alive");
        req.headers_mut()
            .append("connection", HeaderValue::from_static("Upgrade"));
        assert!(
            validate_request(&req).is_ok(),
            "tokens over several header lines"
        );
    }

    #[test]
    fn missing_or_wrong_upgrade_is_400() {
        for req in [
            without("upgrade"),
            with("upgrade", "h2c"),
            with("upgrade", "websockets"),
        ] {
            let err = validate_request(&req).unwrap_err();
            assert_eq!(err, HandshakeError::NoUpgradeWebSocket);
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn missing_or_wrong_connection_is_400() {
        for req in [
            without("connection"),
            with("connection", "keep-alive"),
            with("connection", "upgraded"),
        ] {
            assert_eq!(
                validate_request(&req),
                Err(HandshakeError::NoConnectionUpgrade)
            );
        }
    }

    /// RFC 6455 §4.4: an unsupported version is answered with 426 and the versions we speak.
    #[test]
    fn wrong_version_is_426_with_the_supported_version() {
        for req in [
            without("sec-websocket-version"),
            with("sec-websocket-version", "8"),
            with("sec-websocket-version", "14"),
            with("sec-websocket-version", "13, 8"),
        ] {
            let err = validate_request(&req).unwrap_err();
            assert_eq!(err, HandshakeError::UnsupportedVersion);
            let res = err.to_response();
            assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
            assert_eq!(res.headers()["sec-websocket-version"], "13");
            assert_eq!(res.body(), err.reason());
        }
    }

    #[test]
    fn key_must_be_base64_of_16_bytes() {
        assert_eq!(
            validate_request(&without("sec-websocket-key")),
            Err(HandshakeError::MissingKey)
        );
        for key in [
            "",
            "not base64!",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZXg=",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let mut req = example().body(()).unwrap();
            req.headers_mut()
                .insert("sec-websocket-key", HeaderValue::from_str(key).unwrap());
            let err = validate_request(&req).unwrap_err();
            assert_eq!(err, HandshakeError::InvalidKey, "{key:?}");
            let res = err.to_response();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST);
            assert!(res.headers().get("sec-websocket-version").is_none());
        }
        let mut req = example().body(()).unwrap();
        req.headers_mut().append(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            validate_request(&req),
            Err(HandshakeError::MissingKey),
            "two keys"
        );
    }
}

mod rfc6455_4_2_2_subprotocols {
    use super::*;

    #[test]
    fn first_of_the_clients_list_that_we_support() {
        let client = validate_request(&example().body(()).unwrap()).unwrap();
        assert_eq!(client.select_protocol(&["superchat", "chat"]), Some("chat"));
        assert_eq!(client.select_protocol(&["superchat"]), Some("superchat"));
        assert_eq!(client.select_protocol(&["mqtt"]), None);
        assert_eq!(
            client.select_protocol(&["Chat"]),
            None,
            "tokens compare exactly"
        );
        let res = response(&client, client.select_protocol(&["superchat"]));
        assert_eq!(res.headers()["sec-websocket-protocol"], "superchat");
    }

    #[test]
    fn no_protocol_header_means_none_offered() {
        let client = validate_request(&without("sec-websocket-protocol")).unwrap();
        assert!(client.protocols.is_empty());
        assert_eq!(client.select_protocol(&["chat"]), None);
    }
}

mod rfc6455_4_1_client_side {
    use super::*;

    #[test]
    fn client_request_round_trip() {
        let uri: Uri = "ws://example.com:8080/live?room=1".parse().unwrap();
        let (req, key) = client_request_with_protocols(&uri, &["v2", "v1"]);
        assert_eq!(req.uri(), &uri);
        assert_eq!(req.headers()["host"], "example.com:8080");
        let client = validate_request(&req).unwrap();
        assert_eq!(client.key, key);
        let chosen = client.select_protocol(&["v1"]);
        let res = response(&client, chosen);
        assert_eq!(
            check_response(&res, &key, &["v2", "v1"]),
            Ok(Some("v1".into()))
        );
    }

    #[test]
    fn keys_are_fresh() {
        assert_ne!(generate_key(), generate_key());
        assert_eq!(BASE64.decode(generate_key()).unwrap().len(), 16);
    }

    #[test]
    fn bad_responses_are_refused() {
        let (req, key) = client_request(&"ws://h/".parse().unwrap());
        let client = validate_request(&req).unwrap();
        let good = response(&client, None);
        assert_eq!(check_response(&good, &key, &[]), Ok(None));

        let mut res = response(&client, None);
        *res.status_mut() = StatusCode::OK;
        assert_eq!(
            check_response(&res, &key, &[]),
            Err(ResponseError::NotSwitchingProtocols(200))
        );

        assert_eq!(
            check_response(&good, &generate_key(), &[]),
            Err(ResponseError::AcceptMismatch)
        );

        let mut res = response(&client, None);
        res.headers_mut().remove("upgrade");
        assert_eq!(
            check_response(&res, &key, &[]),
            Err(ResponseError::NoUpgradeWebSocket)
        );

        let mut res = response(&client, None);
        res.headers_mut().remove("connection");
        assert_eq!(
            check_response(&res, &key, &[]),
            Err(ResponseError::NoConnectionUpgrade)
        );

        let res = response(&client, Some("surprise"));
        assert_eq!(
            check_response(&res, &key, &["chat"]),
            Err(ResponseError::UnrequestedProtocol("surprise".into()))
        );
    }
}
