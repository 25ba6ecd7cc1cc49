//! Table-driven tests of request parsing and golden tests of server messages.

use super::*;
use proptest::prelude::*;

fn inst(s: &str) -> Instrument {
    Instrument::parse(s).expect("valid")
}

fn code_of(text: &str) -> ErrorCode {
    match parse_request(text.as_bytes()) {
        Err(e) => e.code,
        Ok(r) => panic!("{text} parsed as {r:?}"),
    }
}

#[test]
fn every_malformed_shape_gets_its_code() {
    let cases: &[(&str, ErrorCode)] = &[
        ("", ErrorCode::BadRequest),
        ("not json", ErrorCode::BadRequest),
        ("{\"op\":\"ping\"", ErrorCode::BadRequest),
        ("[1,2]", ErrorCode::BadRequest),
        ("\"ping\"", ErrorCode::BadRequest),
        ("{}", ErrorCode::BadRequest),
        (r#"{"op":5}"#, ErrorCode::BadRequest),
        (r#"{"op":"ping","id":{"a":1}}"#, ErrorCode::BadRequest),
        (r#"{"op":"ping","id":[1]}"#, ErrorCode::BadRequest),
        (r#"{"op":"ping","extra":1}"#, ErrorCode::BadRequest),
        (r#"{"op":"fly"}"#, ErrorCode::UnknownOp),
        (
            r#"{"op":"SUBSCRIBE","channel":"quote","symbols":["coinbase:BTC-USD"]}"#,
            ErrorCode::UnknownOp,
        ),
        (
            r#"{"op":"subscribe","symbols":["coinbase:BTC-USD"]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":7,"symbols":["coinbase:BTC-USD"]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"candles","symbols":["coinbase:BTC-USD"]}"#,
            ErrorCode::UnknownChannel,
        ),
        (
            r#"{"op":"subscribe","channel":"quote"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":[]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":"coinbase:BTC-USD"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":[1]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"snapshot":"yes"}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":-1}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":1.5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"throttle_ms":60001}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"throtle_ms":5}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"from_seq":{"coinbase:BTC-USD":1}}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":{"kraken:BTC-USD":1}}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":{"coinbase:BTC-USD":-4}}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"subscribe","channel":"trade","symbols":["coinbase:BTC-USD"],"from_seq":[1]}"#,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"unsubscribe","channel":"nope","symbols":["coinbase:BTC-USD"]}"#,
            ErrorCode::UnknownChannel,
        ),
        (
            r#"{"op":"unsubscribe","channel":"quote","symbols":["coinbase:BTC-USD"],"snapshot":true}"#,
            ErrorCode::BadRequest,
        ),
        (r#"{"op":"list","channel":"quote"}"#, ErrorCode::BadRequest),
    ];
    for (text, code) in cases {
        assert_eq!(code_of(text), *code, "{text}");
    }
}

#[test]
fn errors_keep_the_id_when_it_was_readable() {
    let e = parse_request(br#"{"op":"fly","id":"abc"}"#).expect_err("unknown op");
    let v: serde_json::Value = serde_json::from_slice(&e.encode()).expect("json");
    assert_eq!(v["id"], "abc");
    assert_eq!(v["code"], "unknown_op");
    let e = parse_request(b"{oops").expect_err("bad json");
    let v: serde_json::Value = serde_json::from_slice(&e.encode()).expect("json");
    assert!(v.get("id").is_none());
    assert_eq!(v["code"], "bad_request");
}

#[test]
fn subscribe_with_every_option() {
    let r = parse_request(
        br#"{"op":"subscribe","id":1,"channel":"trade","symbols":["binance:BTC-USDT","kraken:*","bad","binance:BTC-USDT","bad"],"snapshot":false,"throttle_ms":250,"from_seq":{"binance:BTC-USDT":1201}}"#,
    )
    .expect("valid");
    let Request::Subscribe(s) = r else {
        panic!("{r:?}")
    };
    assert_eq!(s.id.as_ref().map(RequestId::as_json), Some("1"));
    assert_eq!(s.channel, Channel::Trade);
    assert_eq!(
        s.symbols,
        vec![
            SymbolSelector::Instrument(inst("binance:BTC-USDT")),
            SymbolSelector::Venue("kraken".into())
        ]
    );
    assert_eq!(s.invalid, vec!["bad".to_owned()]);
    assert!(!s.snapshot);
    assert_eq!(s.throttle_ms, 250);
    assert_eq!(s.from_seq, vec![(inst("binance:BTC-USDT"), 1201)]);
}

#[test]
fn subscribe_defaults() {
    let r =
        parse_request(br#"{"op":"subscribe","channel":"quote","symbols":["coinbase:BTC-USD"]}"#)
            .expect("valid");
    let Request::Subscribe(s) = r else {
        panic!("{r:?}")
    };
    assert!(s.snapshot);
    assert_eq!(s.throttle_ms, 0);
    assert!(s.id.is_none() && s.from_seq.is_empty() && s.invalid.is_empty());
}

#[test]
fn auth_op_carries_a_string_token() {
    assert_eq!(
        parse_request(br#"{"op":"auth","id":1,"token":"abc"}"#),
        Ok(Request::Auth {
            id: Some(RequestId("1".into())),
            token: "abc".into()
        })
    );
    let e = parse_request(br#"{"op":"auth","token":5}"#).expect_err("not a string");
    assert_eq!(e.code, ErrorCode::BadRequest);
    let e = parse_request(br#"{"op":"auth","token":"a","extra":1}"#).expect_err("unknown field");
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert_eq!(
        std::str::from_utf8(&authenticated(Some(&RequestId("7".into())))).ok(),
        Some(r#"{"type":"authenticated","id":7}"#)
    );
}

#[test]
fn other_ops() {
    assert_eq!(
        parse_request(br#"{"op":"ping","id":"x"}"#),
        Ok(Request::Ping {
            id: Some(RequestId("\"x\"".into()))
        })
    );
    assert_eq!(
        parse_request(br#"{"op":"list","id":null}"#),
        Ok(Request::List { id: None })
    );
    let Ok(Request::Unsubscribe(u)) = parse_request(
        br#"{"op":"unsubscribe","id":2.5,"channel":"book","symbols":["coinbase:*"]}"#,
    ) else {
        panic!("unsubscribe")
    };
    assert_eq!(u.id.as_ref().map(RequestId::as_json), Some("2.5"));
    assert_eq!(u.symbols, vec![SymbolSelector::Venue("coinbase".into())]);
}

#[test]
fn server_messages_are_golden() {
    let limits = Limits {
        max_subscriptions: 1024,
        max_requests_per_sec: 20,
        max_message_bytes: 1_048_576,
    };
    assert_eq!(
        &hello("tickwire/0.1.0", 15000, &limits)[..],
        br#"{"type":"hello","version":1,"server":"tickwire/0.1.0","heartbeat_ms":15000,"limits":{"max_subscriptions":1024,"max_requests_per_sec":20,"max_message_bytes":1048576}}"#
    );
    let id = RequestId("1".into());
    assert_eq!(
        &subscribed(Some(&id), Channel::Quote, &[inst("coinbase:BTC-USD")])[..],
        br#"{"type":"subscribed","id":1,"channel":"quote","symbols":["coinbase:BTC-USD"]}"#
    );
    assert_eq!(
        &unsubscribed(None, Channel::Quote, &[])[..],
        br#"{"type":"unsubscribed","channel":"quote","symbols":[]}"#
    );
    assert_eq!(&pong(Some(&id), 7)[..], br#"{"type":"pong","id":1,"ts":7}"#);
    assert_eq!(
        &error(Some(&id), ErrorCode::UnknownSymbol, "not served", &["x:Y-Z".into()])[..],
        br#"{"type":"error","id":1,"code":"unknown_symbol","message":"not served","symbols":["x:Y-Z"]}"#
    );
    assert_eq!(
        &gap(Channel::Trade, &inst("binance:BTC-USDT"), 5, 9, GapReason::SlowConsumer)[..],
        br#"{"type":"gap","channel":"trade","symbol":"binance:BTC-USDT","from_seq":5,"to_seq":9,"reason":"slow_consumer"}"#
    );
    assert_eq!(
        &status(&inst("kraken:BTC-USD"), FeedState::Stale, "feed_disconnected")[..],
        br#"{"type":"status","symbol":"kraken:BTC-USD","state":"stale","reason":"feed_disconnected"}"#
    );
    let channels = [Channel::Trade, Channel::Quote];
    let i = inst("coinbase:BTC-USD");
    assert_eq!(
        &symbols(Some(&RequestId("3".into())), [(&i, &channels[..])])[..],
        br#"{"type":"symbols","id":3,"symbols":[{"symbol":"coinbase:BTC-USD","channels":["trade","quote"]}]}"#
    );
    for code in ErrorCode::ALL {
        let v: serde_json::Value =
            serde_json::from_slice(&error(None, code, "m", &[])).expect("json");
        assert_eq!(v["code"], code.as_str());
    }
}

#[test]
fn huge_symbol_lists_are_refused_and_large_ones_parse_fast() {
    let many: Vec<String> = (0..MAX_SYMBOLS + 1)
        .map(|i| format!("v:S{i}-USD"))
        .collect();
    let text = serde_json::json!({"op":"subscribe","channel":"quote","symbols":many}).to_string();
    assert_eq!(code_of(&text), ErrorCode::BadRequest);
    // At the limit, distinct and duplicated entries parse (linear dedupe).
    let mut at_limit: Vec<String> = (0..MAX_SYMBOLS / 2)
        .map(|i| format!("v:S{i}-USD"))
        .collect();
    at_limit.extend(at_limit.clone());
    let text =
        serde_json::json!({"op":"subscribe","channel":"quote","symbols":at_limit}).to_string();
    let Ok(Request::Subscribe(s)) = parse_request(text.as_bytes()) else {
        panic!("valid")
    };
    assert_eq!(s.symbols.len(), MAX_SYMBOLS / 2);
}

proptest! {
    /// No input makes the parser panic, and every rejection names a code.
    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn parser_never_panics_on_request_like_json(
        op in prop_oneof![Just("subscribe".to_owned()), Just("unsubscribe".to_owned()), Just("list".to_owned()), Just("ping".to_owned()), "[a-z]{0,8}"],
        channel in "[a-z]{0,7}",
        sym in "[A-Za-z:*-]{0,16}",
        throttle in any::<i64>(),
    ) {
        let text = format!(r#"{{"op":"{op}","channel":"{channel}","symbols":["{sym}"],"throttle_ms":{throttle}}}"#);
        let _ = parse_request(text.as_bytes());
    }
}
