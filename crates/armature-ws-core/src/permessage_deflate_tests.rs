//! Negotiation, parameter by parameter (RFC 7692 §5, §7.1), checked on the exact header.

use super::*;
use crate::extensions::parse;

fn answer(offers: &str, config: &DeflateConfig) -> Option<String> {
    negotiate(&parse(offers), config).map(|p| p.to_header())
}

/// A config that asks for nothing the client did not offer.
fn plain() -> DeflateConfig {
    let mut config = DeflateConfig::dedicated(15);
    config.client_no_context_takeover = false;
    config
}

/// §5: the first acceptable offer wins; the others are ignored.
#[test]
fn rfc7692_5_first_acceptable_offer_in_order() {
    assert_eq!(
        answer(
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, \
             permessage-deflate; foo, permessage-deflate; client_no_context_takeover, \
             permessage-deflate",
            &plain()
        )
        .as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    assert_eq!(answer("x-webkit-deflate-frame", &plain()), None);
    assert_eq!(answer("", &plain()), None);
    assert_eq!(
        answer("PerMessage-Deflate", &plain()).as_deref(),
        Some("permessage-deflate")
    );
}

/// §7.1: unknown, repeated or malformed parameters decline the offer.
#[test]
fn rfc7692_7_1_bad_parameters_decline_the_offer() {
    for offer in [
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=09",
        "permessage-deflate; client_max_window_bits=abc",
    ] {
        assert_eq!(answer(offer, &plain()), None, "{offer}");
        assert_eq!(answer(offer, &DeflateConfig::shared()), None, "{offer}");
    }
}

/// §7.1.1.1: `server_no_context_takeover` offered must be in the answer; we also say it
/// unasked when we reset per message.
#[test]
fn rfc7692_7_1_1_1_server_no_context_takeover() {
    assert_eq!(
        answer("permessage-deflate; server_no_context_takeover", &plain()).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let mut config = plain();
    config.server_no_context_takeover = true;
    assert_eq!(
        answer("permessage-deflate", &config).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
}

/// §7.1.1.2: `client_no_context_takeover` offered is answered (it costs the client nothing
/// and saves us a decompressor); asked for unoffered when the config wants it.
#[test]
fn rfc7692_7_1_1_2_client_no_context_takeover() {
    assert_eq!(
        answer("permessage-deflate; client_no_context_takeover", &plain()).as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    let mut config = plain();
    config.client_no_context_takeover = true;
    assert_eq!(
        answer("permessage-deflate", &config).as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
}

/// §7.1.2.1: `server_max_window_bits` offered is answered with that value or a smaller one;
/// 8 cannot be honoured by zlib, so that offer is declined.
#[test]
fn rfc7692_7_1_2_1_server_max_window_bits() {
    for bits in 9..=15 {
        assert_eq!(
            answer(
                &format!("permessage-deflate; server_max_window_bits={bits}"),
                &plain()
            ),
            Some(format!("permessage-deflate; server_max_window_bits={bits}"))
        );
    }
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=8", &plain()),
        None
    );
    assert_eq!(
        answer(
            "permessage-deflate; server_max_window_bits=\"12\"",
            &plain().server_max_window_bits(10)
        )
        .as_deref(),
        Some("permessage-deflate; server_max_window_bits=10")
    );
    // Unoffered, a smaller window of ours is announced.
    assert_eq!(
        answer("permessage-deflate", &plain().server_max_window_bits(11)).as_deref(),
        Some("permessage-deflate; server_max_window_bits=11")
    );
}

/// §7.1.2.2: `client_max_window_bits` may be answered only when offered, with a value no
/// greater than the offered one.
#[test]
fn rfc7692_7_1_2_2_client_max_window_bits() {
    // Offered without a value: our limit, if we have one.
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits", &plain()).as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(
        answer(
            "permessage-deflate; client_max_window_bits",
            &plain().client_max_window_bits(10)
        )
        .as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
    // Offered with a value: the smaller of the two.
    assert_eq!(
        answer(
            "permessage-deflate; client_max_window_bits=9",
            &plain().client_max_window_bits(12)
        )
        .as_deref(),
        Some("permessage-deflate; client_max_window_bits=9")
    );
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits=8", &plain()).as_deref(),
        Some("permessage-deflate; client_max_window_bits=8")
    );
    // Not offered: never answered, whatever our limit.
    assert_eq!(
        answer("permessage-deflate", &plain().client_max_window_bits(9)).as_deref(),
        Some("permessage-deflate")
    );
}

/// What browsers and common clients offer, answered in shared mode.
#[test]
fn real_client_offers_in_shared_mode() {
    let shared = DeflateConfig::shared();
    // Chromium, Firefox, Node `ws`.
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits", &shared).as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    // Python `websockets`.
    assert_eq!(
        answer(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            &shared
        )
        .as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=12"
        )
    );
}

#[test]
fn direction_params_follow_the_role() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: false,
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(8),
    };
    let server_out = DirectionParams {
        window_bits: 10,
        no_context_takeover: true,
    };
    // Told 8, a zlib peer compresses with 9: inflate with 9.
    let client_out = DirectionParams {
        window_bits: 9,
        no_context_takeover: false,
    };
    assert_eq!(params.outgoing(Role::Server), server_out);
    assert_eq!(params.incoming(Role::Client), server_out);
    assert_eq!(params.outgoing(Role::Client), client_out);
    assert_eq!(params.incoming(Role::Server), client_out);
    assert_eq!(
        DeflateParams::default().outgoing(Role::Server).window_bits,
        15
    );
}

#[test]
fn client_checks_the_answer() {
    let offer = DeflateOffer::default();
    let ok = |s: &str| offer.check_response(&parse(s));
    assert_eq!(ok(""), Ok(None));
    assert_eq!(
        ok("permessage-deflate; server_no_context_takeover; server_max_window_bits=8"),
        Ok(Some(DeflateParams {
            server_no_context_takeover: true,
            server_max_window_bits: Some(8),
            ..DeflateParams::default()
        }))
    );
    assert_eq!(
        ok("permessage-deflate, permessage-deflate"),
        Err(DeflateResponseError::Unrequested)
    );
    assert_eq!(ok("x-foo"), Err(DeflateResponseError::Unrequested));
    for bad in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
    ] {
        assert_eq!(ok(bad), Err(DeflateResponseError::InvalidParams), "{bad}");
    }
    // Not offered: client_max_window_bits may not come back.
    let offer = DeflateOffer {
        client_max_window_bits: None,
        server_max_window_bits: Some(10),
        server_no_context_takeover: true,
        client_no_context_takeover: false,
    };
    assert_eq!(
        offer.to_header(),
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
    );
    let check = |s: &str| offer.check_response(&parse(s));
    assert!(check("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10").is_err());
    assert!(
        check("permessage-deflate; server_no_context_takeover; server_max_window_bits=11").is_err()
    );
    assert!(
        check("permessage-deflate; server_max_window_bits=10").is_err(),
        "nct dropped"
    );
    assert!(
        check("permessage-deflate; server_no_context_takeover").is_err(),
        "bits dropped"
    );
    assert!(
        check("permessage-deflate; server_no_context_takeover; server_max_window_bits=9").is_ok()
    );
}

#[test]
fn config_presets() {
    assert_eq!(DeflateConfig::default(), DeflateConfig::shared());
    let dedicated = DeflateConfig::dedicated(4);
    assert_eq!(dedicated.server_max_window_bits, 9);
    assert!(!dedicated.client_no_context_takeover);
    assert_eq!(DeflateConfig::dedicated(20).server_max_window_bits, 15);
    assert_eq!(DeflateConfig::shared().level(12).level, 9);
}
