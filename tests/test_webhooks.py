"""Webhook verification, parsing, URL validation, stream tracking (docs/protocol.md §8.1-§8.3)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto import DisallowedHost, InvalidConfig, ServerUrl, WebhookError
from rtms_proto.enums import Product, StopReason
from rtms_proto.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    URL_VALIDATION_EVENT,
    Disposition,
    OtherWebhook,
    RtmsInterrupted,
    RtmsStarted,
    RtmsStopped,
    StreamTracker,
    UrlValidation,
    WebhookErrorKind,
    WebhookEvent,
    WebhookRejected,
    parse_webhook,
    parse_webhook_payload,
    sign_webhook,
    url_validation_response,
    verify_webhook,
)

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "whsec-test-token"
K = WebhookErrorKind


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def wss(host: str, resource: str = "/", *, url: str | None = None) -> ServerUrl:
    return ServerUrl(
        url=url or f"wss://{host}{resource}",
        scheme="wss",
        host=host,
        port=443,
        resource=resource,
        secure=True,
    )


def rejected(excinfo: pytest.ExceptionInfo[WebhookRejected], kind: WebhookErrorKind) -> str:
    """Assert the kind and that nothing secret leaks; return the message."""
    err = excinfo.value
    assert isinstance(err, WebhookError)
    assert err.kind is kind
    text = f"{err} {err!r} {err.detail}"
    assert SECRET not in text
    assert "v0=" not in text
    return str(err)


# --------------------------------------------------------------------------- fixtures

MEETING_ID = "4444AAAiAAAAAiAiAiiAii=="
MEETING_STREAM = "03db704592624398931a588dd78200cb"
WEBINAR_ID = "WbN4rUuIDSq2Eh9u0VSw2A=="
WEBINAR_STREAM = "9d2c1c7a6c5f4f8fb1c2f3e4d5a6b7c8"
SESSION_ID = "VGhpcyBpcyBhIHNlc3Npb24="
SESSION_STREAM = "c0ffee00c0ffee00c0ffee00c0ffee00"
ENGAGEMENT_ID = "dbc1qwe8Sgixn0M3R6SCYQ"
ZCC_STREAM = "ab12cd34ef56ab12cd34ef56ab12cd34"
LEGACY_ZCC_ID = "zcc-legacy-session-0001"
LEGACY_ZCC_STREAM = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a"
CALL_ID = "7318264599876543210"
CALL_STREAM = "fee1deadfee1deadfee1deadfee1dead"

EXPECTED: dict[str, WebhookEvent] = {
    "meeting.rtms_started.json": RtmsStarted(
        product=Product.MEETING,
        event="meeting.rtms_started",
        event_ts=1732638000123,
        instance_id=MEETING_ID,
        id_key="meeting_uuid",
        rtms_stream_id=MEETING_STREAM,
        server_url=wss("rtms-sjc1.zoom.us"),
        operator_id="30R7kT7bTIKSNUFEuH_Qlg",
    ),
    "meeting.rtms_stopped.json": RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=1732638900456,
        instance_id=MEETING_ID,
        id_key="meeting_uuid",
        rtms_stream_id=MEETING_STREAM,
        stop_reason=StopReason.MEETING_ENDED,
    ),
    "meeting.rtms_interrupted.json": RtmsInterrupted(
        product=Product.MEETING,
        event="meeting.rtms_interrupted",
        event_ts=1732638500000,
        instance_id=MEETING_ID,
        id_key="meeting_uuid",
        rtms_stream_id=MEETING_STREAM,
    ),
    "meeting.rtms_started.nested.json": RtmsStarted(
        product=Product.MEETING,
        event="meeting.rtms_started",
        event_ts=1732638000999,
        instance_id="Bx9r2nQhS8yD3kUeE7g2Ow==",
        id_key="meeting_uuid",
        rtms_stream_id="5ee2d5a4c0c64c3e9a2b0a0f5d9f6b11",
        server_url=wss("zoom-rtms-iad-2.zoom.us", "/rtms?x=1"),
        signature="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ),
    "webinar.rtms_started.json": RtmsStarted(
        product=Product.WEBINAR,
        event="webinar.rtms_started",
        event_ts=1732639000000,
        instance_id=WEBINAR_ID,
        id_key="webinar_uuid",
        rtms_stream_id=WEBINAR_STREAM,
        server_url=wss("rtms-fra1.zoom.us"),
        operator_id="Xm1rT5Y2Qz2wVn9ZPt6E3A",
    ),
    "webinar.rtms_started.meeting_uuid.json": RtmsStarted(
        product=Product.WEBINAR,
        event="webinar.rtms_started",
        event_ts=1732639000001,
        instance_id=WEBINAR_ID,
        id_key="meeting_uuid",
        rtms_stream_id=WEBINAR_STREAM,
        server_url=wss("rtms-fra1.zoom.us"),
    ),
    "webinar.rtms_stopped.json": RtmsStopped(
        product=Product.WEBINAR,
        event="webinar.rtms_stopped",
        event_ts=1732639600000,
        instance_id=WEBINAR_ID,
        id_key="webinar_uuid",
        rtms_stream_id=WEBINAR_STREAM,
        stop_reason=StopReason.HOST_TRIGGERED,
    ),
    "webinar.rtms_interrupted.json": RtmsInterrupted(
        product=Product.WEBINAR,
        event="webinar.rtms_interrupted",
        event_ts=1732639300000,
        instance_id=WEBINAR_ID,
        id_key="webinar_uuid",
        rtms_stream_id=WEBINAR_STREAM,
    ),
    "session.rtms_started.json": RtmsStarted(
        product=Product.VIDEO_SDK,
        event="session.rtms_started",
        event_ts=1732640000000,
        instance_id=SESSION_ID,
        id_key="session_id",
        rtms_stream_id=SESSION_STREAM,
        server_url=wss("rtms-syd1.zoom.us"),
    ),
    "session.rtms_stopped.json": RtmsStopped(
        product=Product.VIDEO_SDK,
        event="session.rtms_stopped",
        event_ts=1732640600000,
        instance_id=SESSION_ID,
        id_key="session_id",
        rtms_stream_id=SESSION_STREAM,
        stop_reason=StopReason.USER_TRIGGERED,
    ),
    "session.rtms_interrupted.json": RtmsInterrupted(
        product=Product.VIDEO_SDK,
        event="session.rtms_interrupted",
        event_ts=1732640300000,
        instance_id=SESSION_ID,
        id_key="session_id",
        rtms_stream_id=SESSION_STREAM,
    ),
    "contact_center.voice_rtms_started.json": RtmsStarted(
        product=Product.CONTACT_CENTER,
        event="contact_center.voice_rtms_started",
        event_ts=1732641000000,
        instance_id=ENGAGEMENT_ID,
        id_key="engagement_id",
        rtms_stream_id=ZCC_STREAM,
        server_url=wss("rtms-iad1.zoom.us"),
    ),
    "contact_center.voice_rtms_stopped.json": RtmsStopped(
        product=Product.CONTACT_CENTER,
        event="contact_center.voice_rtms_stopped",
        event_ts=1732641600000,
        instance_id=ENGAGEMENT_ID,
        id_key="engagement_id",
        rtms_stream_id=ZCC_STREAM,
        stop_reason=StopReason.CUSTOMER_DISCONNECTED,
    ),
    "contact_center.voice_rtms_interrupted.json": RtmsInterrupted(
        product=Product.CONTACT_CENTER,
        event="contact_center.voice_rtms_interrupted",
        event_ts=1732641300000,
        instance_id=ENGAGEMENT_ID,
        id_key="engagement_id",
        rtms_stream_id=ZCC_STREAM,
    ),
    "contactcenter.rtms_started.json": RtmsStarted(
        product=Product.CONTACT_CENTER,
        event="contactcenter.rtms_started",
        event_ts=1732642000000,
        instance_id=LEGACY_ZCC_ID,
        id_key="session_id",
        rtms_stream_id=LEGACY_ZCC_STREAM,
        server_url=wss("rtms-ams1.zoom.us"),
    ),
    "contactcenter.rtms_stopped.json": RtmsStopped(
        product=Product.CONTACT_CENTER,
        event="contactcenter.rtms_stopped",
        event_ts=1732642600000,
        instance_id=LEGACY_ZCC_ID,
        id_key="session_id",
        rtms_stream_id=LEGACY_ZCC_STREAM,
        stop_reason=99,
    ),
    "phone.rtms_started.json": RtmsStarted(
        product=Product.PHONE,
        event="phone.rtms_started",
        event_ts=1732643000000,
        instance_id=CALL_ID,
        id_key="call_id",
        rtms_stream_id=CALL_STREAM,
        server_url=wss("rtms-nrt1.zoom.com", "/signal", url="wss://rtms-nrt1.zoom.com:443/signal"),
    ),
    "phone.rtms_stopped.json": RtmsStopped(
        product=Product.PHONE,
        event="phone.rtms_stopped",
        event_ts=1732643600000,
        instance_id=CALL_ID,
        id_key="call_id",
        rtms_stream_id=CALL_STREAM,
        stop_reason=None,
    ),
    "phone.rtms_interrupted.json": RtmsInterrupted(
        product=Product.PHONE,
        event="phone.rtms_interrupted",
        event_ts=1732643300000,
        instance_id=CALL_ID,
        id_key="call_id",
        rtms_stream_id=CALL_STREAM,
    ),
    "endpoint.url_validation.json": UrlValidation(
        plain_token="qgg8vlvZRS6UYooatFL8Aw", event_ts=1654503849680
    ),
    "rtms.concurrency_limited.json": OtherWebhook(
        event="rtms.concurrency_limited",
        event_ts=1732644000000,
        payload={
            "account_id": "AAAAAABBBB",
            "limit": 10,
            "streams": ({"rtms_stream_id": MEETING_STREAM},),
        },
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


def test_fixtures_cover_every_product_and_stream_event() -> None:
    seen = {
        (type(event), event.product)
        for event in EXPECTED.values()
        if isinstance(event, RtmsStarted | RtmsStopped | RtmsInterrupted)
    }
    assert seen == {
        (kind, product)
        for kind in (RtmsStarted, RtmsStopped, RtmsInterrupted)
        for product in Product
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses(name: str) -> None:
    assert parse_webhook(fixture(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_verifies_over_its_raw_bytes(name: str) -> None:
    body = fixture(name)
    headers = sign_webhook(raw_body=body, secret=SECRET, timestamp=1732638000)
    verify_webhook(headers=headers, raw_body=body, secret=SECRET, now=1732638000.0)


# --------------------------------------------------------------------------- verification

KNOWN_BODY = "meeting.rtms_started.json"
KNOWN_TS = 1732638000
# printf 'v0:1732638000:' | cat - meeting.rtms_started.json
#   | openssl dgst -sha256 -hmac whsec-test-token
KNOWN_SIGNATURE = "v0=4e621159e35ed89b68a123cf957cdb2c1e8b223baafd555a4e12fc6710914a47"


def test_sign_webhook_known_vector() -> None:
    assert sign_webhook(raw_body=fixture(KNOWN_BODY), secret=SECRET, timestamp=KNOWN_TS) == {
        "x-zm-signature": KNOWN_SIGNATURE,
        "x-zm-request-timestamp": "1732638000",
    }
    assert (SIGNATURE_HEADER, TIMESTAMP_HEADER) == ("x-zm-signature", "x-zm-request-timestamp")


def test_verify_known_vector_with_zoom_header_case() -> None:
    headers = {"X-Zm-Signature": KNOWN_SIGNATURE, "X-Zm-Request-Timestamp": str(KNOWN_TS)}
    verify_webhook(headers=headers, raw_body=fixture(KNOWN_BODY), secret=SECRET, now=KNOWN_TS)


def verify(headers: dict[str, str], body: bytes = b"{}", *, now: float = 1000.0, **kw: Any) -> None:
    verify_webhook(headers=headers, raw_body=body, secret=SECRET, now=now, **kw)


def signed(body: bytes = b"{}", ts: int = 1000) -> dict[str, str]:
    return sign_webhook(raw_body=body, secret=SECRET, timestamp=ts)


@pytest.mark.parametrize(
    "variant",
    [
        lambda b: json.dumps(json.loads(b)).encode(),  # re-serialised, default spacing
        lambda b: json.dumps(json.loads(b), separators=(",", ":")).encode(),
        lambda b: json.dumps(json.loads(b), sort_keys=True, indent=2).encode(),
        lambda b: b.rstrip(b"\n"),
        lambda b: b + b" ",
        lambda b: b.replace(b"rtms-sjc1", b"rtms-sjc2"),
    ],
)
def test_signature_covers_the_raw_bytes(variant: Any) -> None:
    body = fixture(KNOWN_BODY)
    other = variant(body)
    assert other != body
    with pytest.raises(WebhookRejected) as info:
        verify_webhook(headers=signed(body, KNOWN_TS), raw_body=other, secret=SECRET, now=KNOWN_TS)
    rejected(info, K.BAD_SIGNATURE)


def test_wrong_secret_is_bad_signature() -> None:
    headers = sign_webhook(raw_body=b"{}", secret="another-secret", timestamp=1000)
    with pytest.raises(WebhookRejected) as info:
        verify(headers)
    assert "does not match" in rejected(info, K.BAD_SIGNATURE)


def test_client_secret_style_signature_is_refused() -> None:
    # ARLO keys the signature differently (docs/protocol.md §12.23); bare hex fails too.
    good = signed()
    bare = {**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].removeprefix("v0=")}
    with pytest.raises(WebhookRejected) as info:
        verify(bare)
    rejected(info, K.BAD_SIGNATURE)


@pytest.mark.parametrize("value", ["v0=é", "v0=\ud800", "garbage", "v0=" + "0" * 64])
def test_odd_signature_values_are_bad_not_crashes(value: str) -> None:
    with pytest.raises(WebhookRejected) as info:
        verify({**signed(), SIGNATURE_HEADER: value})
    rejected(info, K.BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("drop", "kind"),
    [(SIGNATURE_HEADER, K.MISSING_SIGNATURE), (TIMESTAMP_HEADER, K.MISSING_TIMESTAMP)],
)
def test_missing_headers(drop: str, kind: WebhookErrorKind) -> None:
    headers = signed()
    del headers[drop]
    with pytest.raises(WebhookRejected) as info:
        verify(headers)
    assert drop in rejected(info, kind)
    assert info.value.field == drop
    with pytest.raises(WebhookRejected) as info:
        verify({**headers, drop.upper(): "  "})  # blank counts as missing
    rejected(info, kind)


def test_missing_signature_is_reported_before_timestamp() -> None:
    with pytest.raises(WebhookRejected) as info:
        verify({})
    rejected(info, K.MISSING_SIGNATURE)


def test_repeated_headers() -> None:
    headers = signed()
    same = {**headers, "X-ZM-SIGNATURE": headers[SIGNATURE_HEADER]}
    verify(same)  # the same value twice is fine
    with pytest.raises(WebhookRejected) as info:
        verify({**headers, "X-ZM-SIGNATURE": "v0=00"})
    rejected(info, K.BAD_SIGNATURE)
    with pytest.raises(WebhookRejected) as info:
        verify({**headers, "X-Zm-Request-Timestamp": "999"})
    rejected(info, K.BAD_TIMESTAMP)


def test_surrounding_whitespace_in_headers_is_ignored() -> None:
    headers = {key: f" {value}\t" for key, value in signed().items()}
    verify(headers)


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "1.5",
        "1000.0",
        "-1000",
        "+1000",
        "1e3",
        "1_000",
        "\uff11\uff10\uff10\uff10",
        "0x3e8",
        "9" * 16,
    ],
)
def test_non_integer_timestamp(value: str) -> None:
    with pytest.raises(WebhookRejected) as info:
        verify({**signed(), TIMESTAMP_HEADER: value})
    assert TIMESTAMP_HEADER in rejected(info, K.BAD_TIMESTAMP)


T = 1_700_000_000


@pytest.mark.parametrize(
    ("now", "tolerance", "ok"),
    [
        (T, 300.0, True),
        (T + 300, 300.0, True),
        (T - 300, 300.0, True),
        (T + 300.001, 300.0, False),
        (T - 300.001, 300.0, False),
        (T + 301, 300.0, False),
        (T - 3600, 300.0, False),
        (T + 10, 10.0, True),
        (T + 10.5, 10.0, False),
        (T, 0.0, True),
        (T + 0.25, 0.0, False),
        (T + 10**9, math.inf, True),
    ],
)
def test_timestamp_window_edges(now: float, tolerance: float, ok: bool) -> None:
    headers = signed(ts=T)
    if ok:
        verify(headers, now=now, tolerance=tolerance)
    else:
        with pytest.raises(WebhookRejected) as info:
            verify(headers, now=now, tolerance=tolerance)
        assert "window" in rejected(info, K.STALE_TIMESTAMP)


def test_default_tolerance_is_five_minutes() -> None:
    verify(signed(ts=T), now=T + 300)
    with pytest.raises(WebhookRejected):
        verify(signed(ts=T), now=T + 301)


def test_milliseconds_timestamp_is_stale() -> None:
    ms = T * 1000
    with pytest.raises(WebhookRejected) as info:
        verify(signed(ts=ms), now=T)
    rejected(info, K.STALE_TIMESTAMP)


def test_signature_is_checked_before_freshness() -> None:
    headers = {**signed(ts=T), SIGNATURE_HEADER: "v0=" + "ab" * 32}
    with pytest.raises(WebhookRejected) as info:
        verify(headers, now=T + 10_000)
    rejected(info, K.BAD_SIGNATURE)


def test_timestamp_is_part_of_the_signed_message() -> None:
    headers = {**signed(ts=T), TIMESTAMP_HEADER: str(T + 1)}
    with pytest.raises(WebhookRejected) as info:
        verify(headers, now=T)
    rejected(info, K.BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"secret": ""}, "secret"),
        ({"now": math.nan}, "now"),
        ({"now": math.inf}, "now"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"tolerance": math.nan}, "tolerance"),
    ],
)
def test_verify_misuse_is_invalid_config(kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "headers": signed(ts=T),
        "raw_body": b"{}",
        "secret": SECRET,
        "now": float(T),
        **kw,
    }
    with pytest.raises(InvalidConfig, match=message):
        verify_webhook(**args)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"secret": ""}, "secret"),
        ({"timestamp": -1}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": 1.5}, "timestamp"),
    ],
)
def test_sign_misuse_is_invalid_config(kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"raw_body": b"{}", "secret": SECRET, "timestamp": T, **kw}
    with pytest.raises(InvalidConfig, match=message):
        sign_webhook(**args)


@given(body=st.binary(max_size=256), ts=st.integers(0, 2**40), skew=st.floats(-300, 300))
def test_sign_then_verify_round_trip(body: bytes, ts: int, skew: float) -> None:
    verify_webhook(
        headers=sign_webhook(raw_body=body, secret=SECRET, timestamp=ts),
        raw_body=body,
        secret=SECRET,
        now=ts + skew,
    )


@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_changed_byte_breaks_the_signature(body: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[index] ^= flip
    with pytest.raises(WebhookRejected) as info:
        verify_webhook(
            headers=sign_webhook(raw_body=body, secret=SECRET, timestamp=T),
            raw_body=bytes(tampered),
            secret=SECRET,
            now=T,
        )
    assert info.value.kind is K.BAD_SIGNATURE


def test_independent_hmac_matches() -> None:
    body = b'{"event":"x"}'
    expected = hmac.new(b"k", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert expected == "ac11a265f32e0216475832a9476b7bcaa73e66079bfd9db3a5d0e6f9022b104d"  # openssl
    assert sign_webhook(raw_body=body, secret="k", timestamp=T)[SIGNATURE_HEADER] == (
        "v0=" + expected
    )


def test_rejections_survive_pickling() -> None:
    with pytest.raises(WebhookRejected) as info:
        verify({})
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.kind, copy.detail, copy.field, str(copy)) == (
        K.MISSING_SIGNATURE,
        "header x-zm-signature is missing",
        SIGNATURE_HEADER,
        "missing_signature: header x-zm-signature is missing",
    )


def test_http_status_of_kinds() -> None:
    assert {kind: kind.http_status for kind in WebhookErrorKind} == {
        K.MISSING_SIGNATURE: 401,
        K.MISSING_TIMESTAMP: 401,
        K.BAD_TIMESTAMP: 401,
        K.STALE_TIMESTAMP: 401,
        K.BAD_SIGNATURE: 401,
        K.MALFORMED_BODY: 400,
        K.NOT_RTMS: 400,
        K.DISALLOWED_HOST: 400,
    }


# --------------------------------------------------------------------------- URL validation


def test_url_validation_response_known_vector() -> None:
    body = url_validation_response("qgg8vlvZRS6UYooatFL8Aw", SECRET)
    # printf '%s' qgg8vlvZRS6UYooatFL8Aw | openssl dgst -sha256 -hmac whsec-test-token
    assert json.loads(body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": "48f7c257d67d388580c402c13e1903da88d783d12f5b7166a6ee5f5d79eec062",
    }
    assert isinstance(body, bytes)


def test_url_validation_round_trip_through_parse() -> None:
    event = parse_webhook(fixture("endpoint.url_validation.json"))
    assert isinstance(event, UrlValidation)
    reply = json.loads(url_validation_response(event.plain_token, SECRET))
    assert reply["plainToken"] == event.plain_token
    assert (
        reply["encryptedToken"]
        == hmac.new(SECRET.encode(), event.plain_token.encode(), hashlib.sha256).hexdigest()
    )


@pytest.mark.parametrize(
    ("token", "secret", "name"), [("", SECRET, "plain_token"), ("t", "", "secret")]
)
def test_url_validation_misuse(token: str, secret: str, name: str) -> None:
    with pytest.raises(InvalidConfig, match=name):
        url_validation_response(token, secret)


# --------------------------------------------------------------------------- parsing errors


def body(event: str = "meeting.rtms_started", /, **payload: Any) -> bytes:
    return json.dumps({"event": event, "event_ts": 1, "payload": payload}).encode()


START = {
    "meeting_uuid": MEETING_ID,
    "rtms_stream_id": MEETING_STREAM,
    "server_urls": "wss://rtms-sjc1.zoom.us/",
}


def malformed(raw: bytes, field: str | None = None, **kw: Any) -> str:
    with pytest.raises(WebhookRejected) as info:
        parse_webhook(raw, **kw)
    message = rejected(info, K.MALFORMED_BODY)
    assert info.value.field == field
    return message


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"\xff\xfe\x00", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b"[]", "body"),
        (b'"meeting.rtms_started"', "body"),
        (b"{}", "event"),
        (b'{"event": ""}', "event"),
        (b'{"event": 5}', "event"),
        (b'{"event": "x", "event_ts": "1"}', "event_ts"),
        (b'{"event": "x", "event_ts": 1.5}', "event_ts"),
        (b'{"event": "x", "event_ts": true}', "event_ts"),
        (b'{"event": "x", "payload": []}', "payload"),
        (b'{"event": "x", "payload": "p"}', "payload"),
        (b'{"event": "meeting.rtms_started"}', "payload"),
        (b'{"event": "meeting.rtms_stopped", "payload": null}', "payload"),
        (b'{"event": "endpoint.url_validation"}', "payload"),
        (body(URL_VALIDATION_EVENT), "payload.plainToken"),
        (body(URL_VALIDATION_EVENT, plainToken=""), "payload.plainToken"),
        (body(URL_VALIDATION_EVENT, plainToken=7), "payload.plainToken"),
    ],
)
def test_malformed_envelopes(raw: bytes, field: str) -> None:
    malformed(raw, field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"meeting_uuid": None}, "payload.meeting_uuid"),
        ({"meeting_uuid": ""}, "payload.meeting_uuid"),
        ({"meeting_uuid": 123}, "payload.meeting_uuid"),
        ({"rtms_stream_id": None}, "payload.rtms_stream_id"),
        ({"rtms_stream_id": ["a"]}, "payload.rtms_stream_id"),
        ({"server_urls": None}, "payload.server_urls"),
        ({"server_urls": ["wss://rtms.zoom.us/"]}, "payload.server_urls"),
        ({"server_urls": "https://rtms.zoom.us/"}, "payload.server_urls"),
        ({"server_urls": "wss://user:pw@rtms.zoom.us/"}, "payload.server_urls"),
        ({"operator_id": 42}, "payload.operator_id"),
        ({"signature": {"v": 1}}, "payload.signature"),
    ],
)
def test_malformed_started_payloads(change: dict[str, Any], field: str) -> None:
    payload = {**START, **change}
    message = malformed(body(**payload), field)
    assert field in message


def test_bad_url_message_names_the_problem_not_the_credentials() -> None:
    message = malformed(
        body(**{**START, "server_urls": "wss://user:pw@rtms.zoom.us/"}), "payload.server_urls"
    )
    assert "credentials" in message
    assert "pw@" not in message


def test_missing_ids_in_stop_and_interrupt() -> None:
    malformed(body("meeting.rtms_stopped", rtms_stream_id="s"), "payload.meeting_uuid")
    malformed(body("phone.rtms_interrupted", call_id="c"), "payload.rtms_stream_id")
    # Webinars accept either key and name the preferred one when both are missing.
    malformed(body("webinar.rtms_stopped", rtms_stream_id="s"), "payload.webinar_uuid")


@pytest.mark.parametrize("lone", ["\ud800", "\udfff", "a\udc80b"])
@pytest.mark.parametrize(
    ("event", "key"),
    [
        ("meeting.rtms_started", "meeting_uuid"),
        ("meeting.rtms_started", "rtms_stream_id"),
        ("meeting.rtms_started", "operator_id"),
        ("meeting.rtms_started", "signature"),
        ("meeting.rtms_stopped", "rtms_stream_id"),
        ("meeting.rtms_interrupted", "meeting_uuid"),
        ("webinar.rtms_started", "webinar_uuid"),
        ("phone.rtms_stopped", "call_id"),
        (URL_VALIDATION_EVENT, "plainToken"),
    ],
)
def test_a_lone_surrogate_in_a_text_field_is_a_clear_rejection(
    event: str, key: str, lone: str
) -> None:
    """A JSON ``\\ud800`` escape decodes to a str that cannot be encoded: refused at
    parsing (400, naming the field), never passed on to crash the signature code."""
    payload: dict[str, Any] = {**START, "webinar_uuid": "w==", "call_id": "c", "plainToken": "t"}
    payload[key] = f"id-{lone}-x"
    raw = body(event, **payload)
    assert b"\\ud" in raw.lower()  # the escape as it travels
    message = malformed(raw, f"payload.{key}")
    assert "lone surrogate" in message
    assert K.MALFORMED_BODY.http_status == 400
    # The same payload handed over already decoded (what ``record`` reads) is refused too.
    with pytest.raises(WebhookRejected) as info:
        parse_webhook_payload(payload, event=event)
    assert info.value.field == f"payload.{key}"
    # Nested variant: named by its nested path.
    if event != URL_VALIDATION_EVENT:
        with pytest.raises(WebhookRejected) as info:
            parse_webhook_payload({"object": payload}, event=event)
        assert info.value.field == f"payload.object.{key}"


def test_non_ascii_but_valid_ids_are_kept() -> None:
    raw = body(**{**START, "meeting_uuid": "r\u00e9union==", "rtms_stream_id": "\U0001f600"})
    event = parse_webhook(raw)
    assert isinstance(event, RtmsStarted)
    assert (event.instance_id, event.rtms_stream_id) == ("r\u00e9union==", "\U0001f600")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("evilzoom.us", None),
        ("zoom.us.evil.com", None),
        ("rtms-sjc1.zoom.us.attacker.example", None),
        ("127.0.0.1", None),
        ("rtms-sjc1.zoom.us", ("example.test",)),
    ],
)
def test_forged_server_url_is_refused(host: str, allowed: tuple[str, ...] | None) -> None:
    kw = {} if allowed is None else {"allowed_hosts": allowed}
    with pytest.raises(WebhookRejected) as info:
        parse_webhook(body(**{**START, "server_urls": f"wss://{host}/"}), **kw)
    message = rejected(info, K.DISALLOWED_HOST)
    assert info.value.field == "payload.server_urls"
    assert isinstance(info.value.__cause__, DisallowedHost)
    assert host in message


def test_custom_allowlist_admits_a_loopback_server() -> None:
    event = parse_webhook(
        body(**{**START, "server_urls": "ws://127.0.0.1:8765/signal"}),
        allowed_hosts=("127.0.0.1",),
    )
    assert isinstance(event, RtmsStarted)
    assert (event.server_url.host, event.server_url.port, event.server_url.secure) == (
        "127.0.0.1",
        8765,
        False,
    )


@pytest.mark.parametrize("event", ["meeting.rtms_stopped", "meeting.started", URL_VALIDATION_EVENT])
def test_bad_allowlist_is_caller_misuse_for_every_event(event: str) -> None:
    with pytest.raises(InvalidConfig, match="single str"):
        parse_webhook(body(event, **START, plainToken="t"), allowed_hosts="zoom.us")
    with pytest.raises(InvalidConfig, match="single str"):
        parse_webhook_payload(START, event=event, allowed_hosts="zoom.us")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, StopReason.UNDEFINED),
        (6, StopReason.MEETING_ENDED),
        (26, StopReason.STREAMING_NOT_SUPPORTED),
        (27, 27),
        (-1, -1),
        (None, None),
        ("MEETING_ENDED", StopReason.MEETING_ENDED),
        ("STOP_BC_AUTHENTICATION_FAILURE", StopReason.AUTHENTICATION_FAILURE),
        ("stop_bc_user_left", StopReason.USER_LEFT),
        # Older names of renamed reasons, read as the codec reads them (shared reader).
        ("APP_DISABLED_BY_HOST", StopReason.HOST_DISABLED_APP),
        ("STOP_BC_MEETING_CONNECTION_INTERRUPTED", StopReason.INSTANCE_CONNECTION_INTERRUPTED),
    ],
)
def test_stop_reasons(value: object, reason: StopReason | int | None) -> None:
    event = parse_webhook(body("meeting.rtms_stopped", **{**START, "stop_reason": value}))
    assert isinstance(event, RtmsStopped)
    assert event.stop_reason == reason
    assert type(event.stop_reason) is type(reason)


@pytest.mark.parametrize("value", ["NOT_A_REASON", "6", True, 6.0, [6]])
def test_bad_stop_reasons(value: object) -> None:
    malformed(
        body("meeting.rtms_stopped", **{**START, "stop_reason": value}), "payload.stop_reason"
    )


def test_empty_optional_strings_are_absent() -> None:
    event = parse_webhook(body(**{**START, "operator_id": "", "signature": ""}))
    assert isinstance(event, RtmsStarted)
    assert (event.operator_id, event.signature) == (None, None)


def test_missing_event_ts_is_none() -> None:
    raw = json.dumps({"event": "meeting.rtms_started", "payload": START}).encode()
    event = parse_webhook(raw)
    assert isinstance(event, RtmsStarted)
    assert event.event_ts is None


def test_flat_payload_wins_over_an_object_key() -> None:
    # A flat payload that happens to carry an unrelated "object" is read flat.
    event = parse_webhook(body(**{**START, "object": {"meeting_uuid": "other"}}))
    assert isinstance(event, RtmsStarted)
    assert event.instance_id == MEETING_ID


def test_nested_payload_errors_name_the_nested_field() -> None:
    raw = body(object={"meeting_uuid": MEETING_ID, "server_urls": "wss://rtms.zoom.us/"})
    malformed(raw, "payload.object.rtms_stream_id")


def test_unknown_events_are_kept_read_only() -> None:
    raw = body("meeting.participant_joined", a={"b": [1, {"c": 2}]}, d="e")
    event = parse_webhook(raw)
    assert isinstance(event, OtherWebhook)
    assert event.event == "meeting.participant_joined"
    assert event.event_ts == 1
    assert event.payload == {"a": {"b": (1, {"c": 2})}, "d": "e"}
    with pytest.raises(TypeError):
        event.payload["d"] = "x"  # type: ignore[index]
    inner = event.payload["a"]
    with pytest.raises(TypeError):
        inner["b"] = 1  # type: ignore[index]


def test_deep_but_parseable_unknown_event_is_kept() -> None:
    depth = 800  # parseable by json, deeper than a recursive copy could go
    event = parse_webhook(body("rtms.future", x=json.loads("[" * depth + "]" * depth)))
    assert isinstance(event, OtherWebhook)
    node: object = event.payload["x"]
    for _ in range(depth - 1):
        assert isinstance(node, tuple)
        node = node[0]
    assert node == ()


def test_a_callers_payload_is_frozen_whatever_its_containers() -> None:
    shared = [1, {"a": (2, [3])}]
    other = parse_webhook_payload({"x": shared, "y": shared, "z": ()}, event="rtms.future")
    assert isinstance(other, OtherWebhook)
    assert other.payload == {"x": (1, {"a": (2, (3,))}), "y": (1, {"a": (2, (3,))}), "z": ()}
    cyclic: dict[str, Any] = {"a": [1]}
    cyclic["a"].append(cyclic)
    with pytest.raises(InvalidConfig, match="contains itself"):
        parse_webhook_payload(cyclic, event="rtms.future")


def test_unknown_event_without_payload() -> None:
    event = parse_webhook(b'{"event": "rtms.concurrency_near_limit", "event_ts": 5}')
    assert event == OtherWebhook(event="rtms.concurrency_near_limit", event_ts=5, payload={})


def test_events_are_frozen_and_hide_the_signature() -> None:
    event = parse_webhook(fixture("meeting.rtms_started.nested.json"))
    assert isinstance(event, RtmsStarted)
    signature = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    assert event.signature == signature
    assert signature not in repr(event)
    assert signature not in str(event)
    assert MEETING_ID not in repr(event)  # sanity: it is another meeting
    assert "Bx9r2nQhS8yD3kUeE7g2Ow==" in repr(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.rtms_stream_id = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- payload only


@pytest.mark.parametrize(
    ("payload", "product", "id_key", "event"),
    [
        (START, Product.MEETING, "meeting_uuid", "meeting.rtms_started"),
        (
            {**START, "webinar_uuid": WEBINAR_ID},
            Product.WEBINAR,
            "webinar_uuid",
            "webinar.rtms_started",
        ),
        (
            {**START, "session_id": SESSION_ID},
            Product.VIDEO_SDK,
            "session_id",
            "session.rtms_started",
        ),
        (
            {**START, "engagement_id": ENGAGEMENT_ID, "session_id": "s"},
            Product.CONTACT_CENTER,
            "engagement_id",
            "contact_center.voice_rtms_started",
        ),
        (
            {**START, "call_id": CALL_ID, "session_id": "s"},
            Product.PHONE,
            "call_id",
            "phone.rtms_started",
        ),
        (
            {"object": START, "account_id": "a"},
            Product.MEETING,
            "meeting_uuid",
            "meeting.rtms_started",
        ),
    ],
)
def test_bare_payload_infers_the_product(
    payload: dict[str, Any], product: Product, id_key: str, event: str
) -> None:
    parsed = parse_webhook_payload(payload)
    assert isinstance(parsed, RtmsStarted)
    assert (parsed.product, parsed.id_key, parsed.event) == (product, id_key, event)
    assert parsed.instance_id == (payload.get("object") or payload)[id_key]
    assert parsed.event_ts is None
    assert parsed.server_url.host == "rtms-sjc1.zoom.us"


def test_bare_payload_takes_event_ts() -> None:
    parsed = parse_webhook_payload(START, event_ts=77)
    assert isinstance(parsed, RtmsStarted)
    assert parsed.event_ts == 77


def test_bare_payload_must_be_a_start() -> None:
    stop = {"meeting_uuid": MEETING_ID, "rtms_stream_id": MEETING_STREAM, "stop_reason": 6}
    with pytest.raises(WebhookRejected) as info:
        parse_webhook_payload(stop)
    rejected(info, K.MALFORMED_BODY)
    assert info.value.field == "payload.server_urls"
    # ...unless the event is named.
    named = parse_webhook_payload(stop, event="meeting.rtms_stopped", event_ts=9)
    assert named == RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=9,
        instance_id=MEETING_ID,
        id_key="meeting_uuid",
        rtms_stream_id=MEETING_STREAM,
        stop_reason=StopReason.MEETING_ENDED,
    )


def test_bare_payload_not_rtms() -> None:
    with pytest.raises(WebhookRejected) as info:
        parse_webhook_payload({"object": {"id": 1}, "account_id": "a"})
    assert "not an RTMS payload" in rejected(info, K.NOT_RTMS)
    assert K.NOT_RTMS.http_status == 400


def test_bare_payload_with_stream_but_no_instance_id() -> None:
    with pytest.raises(WebhookRejected) as info:
        parse_webhook_payload({"rtms_stream_id": "s", "server_urls": "wss://zoom.us/"})
    assert "no instance id" in rejected(info, K.MALFORMED_BODY)


def test_payload_must_be_a_mapping() -> None:
    with pytest.raises(WebhookRejected) as info:
        parse_webhook_payload(["not", "a", "mapping"])  # type: ignore[arg-type]
    rejected(info, K.MALFORMED_BODY)


def test_payload_helpers_for_validation_and_other_events() -> None:
    assert parse_webhook_payload(
        {"plainToken": "tok"}, event=URL_VALIDATION_EVENT, event_ts=3
    ) == UrlValidation(plain_token="tok", event_ts=3)
    source: dict[str, Any] = {"list": [1]}
    other = parse_webhook_payload(source, event="rtms.start_failed")
    source["list"].append(2)
    assert other == OtherWebhook(event="rtms.start_failed", event_ts=None, payload={"list": (1,)})


# --------------------------------------------------------------------------- tracker

URL_A = wss("rtms-sjc1.zoom.us")
URL_B = wss("rtms-iad1.zoom.us")


def started(stream: str = "s1", ts: int | None = 100, url: ServerUrl = URL_A) -> RtmsStarted:
    return RtmsStarted(
        product=Product.MEETING,
        event="meeting.rtms_started",
        event_ts=ts,
        instance_id="m",
        id_key="meeting_uuid",
        rtms_stream_id=stream,
        server_url=url,
    )


def stopped(stream: str = "s1", ts: int | None = 200) -> RtmsStopped:
    return RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=ts,
        instance_id="m",
        id_key="meeting_uuid",
        rtms_stream_id=stream,
        stop_reason=StopReason.MEETING_ENDED,
    )


def interrupted(stream: str = "s1") -> RtmsInterrupted:
    return RtmsInterrupted(
        product=Product.MEETING,
        event="meeting.rtms_interrupted",
        event_ts=150,
        instance_id="m",
        id_key="meeting_uuid",
        rtms_stream_id=stream,
    )


D = Disposition


def run(tracker: StreamTracker, *events: WebhookEvent) -> list[Disposition]:
    return [tracker.observe(event) for event in events]


def test_start_retry_failover_stop() -> None:
    tracker = StreamTracker()
    assert run(
        tracker,
        started(ts=100),  # first delivery
        started(ts=100),  # Zoom retried it
        started(ts=300, url=URL_B),  # server failover
        started(ts=100),  # the first one once more, late: not a failover back
        started(ts=300, url=URL_B),  # retry of the failover
        started(ts=400, url=URL_B),  # a newer start at the same URL
        interrupted(),
        stopped(ts=500),
        stopped(ts=500),  # retried stop
        started(ts=400, url=URL_B),  # retry of a start after the stop
    ) == [
        D.NEW_STREAM,
        D.DUPLICATE,
        D.FAILOVER,
        D.DUPLICATE,
        D.DUPLICATE,
        D.FAILOVER,
        D.INTERRUPTED,
        D.STOPPED,
        D.DUPLICATE,
        D.DUPLICATE,
    ]
    assert tracker.live_streams() == {}


def test_same_timestamp_different_url_is_failover() -> None:
    tracker = StreamTracker()
    assert run(tracker, started(ts=100), started(ts=100, url=URL_B)) == [D.NEW_STREAM, D.FAILOVER]
    assert tracker.live_streams()["s1"].server_url == URL_B


def test_live_streams_tracks_the_latest_start() -> None:
    tracker = StreamTracker()
    run(tracker, started("s1"), started("s2", url=URL_B))
    snapshot = tracker.live_streams()
    assert dict(snapshot) == {"s1": started("s1"), "s2": started("s2", url=URL_B)}
    run(tracker, started("s1", ts=900, url=URL_B), stopped("s2"))
    assert dict(tracker.live_streams()) == {"s1": started("s1", ts=900, url=URL_B)}
    assert set(snapshot) == {"s1", "s2"}  # an earlier snapshot does not change
    with pytest.raises(TypeError):
        snapshot["s3"] = started("s3")  # type: ignore[index]


def test_streams_are_independent() -> None:
    tracker = StreamTracker()
    assert run(tracker, started("s1"), started("s2"), stopped("s1"), interrupted("s2")) == [
        D.NEW_STREAM,
        D.NEW_STREAM,
        D.STOPPED,
        D.INTERRUPTED,
    ]


def test_unknown_stop_then_late_start() -> None:
    tracker = StreamTracker()
    assert run(tracker, stopped(ts=200), stopped(ts=200), started(ts=100)) == [
        D.UNKNOWN_STOP,
        D.DUPLICATE,
        D.DUPLICATE,
    ]
    assert tracker.live_streams() == {}


def test_start_newer_than_the_stop_is_a_new_stream() -> None:
    tracker = StreamTracker()
    assert run(tracker, started(ts=100), stopped(ts=200), started(ts=201), stopped(ts=300)) == [
        D.NEW_STREAM,
        D.STOPPED,
        D.NEW_STREAM,
        D.STOPPED,
    ]


def test_missing_timestamps_fall_back_to_the_url() -> None:
    tracker = StreamTracker()
    assert run(
        tracker,
        started(ts=None),
        started(ts=None),
        started(ts=100),  # same URL, a timestamp now: cannot be ordered, treated as new info
        started(ts=None, url=URL_B),
        stopped(ts=None),
        started(ts=None),
        started(ts=999),  # stop time unknown: a start cannot be shown newer
    ) == [
        D.NEW_STREAM,
        D.DUPLICATE,
        D.FAILOVER,
        D.FAILOVER,
        D.STOPPED,
        D.DUPLICATE,
        D.DUPLICATE,
    ]


def test_interrupt_for_unknown_or_stopped_stream_is_ignored() -> None:
    tracker = StreamTracker()
    assert run(tracker, interrupted("nope"), started(), stopped(), interrupted()) == [
        D.IGNORED,
        D.NEW_STREAM,
        D.STOPPED,
        D.IGNORED,
    ]


def test_non_stream_events_are_ignored() -> None:
    tracker = StreamTracker()
    assert run(
        tracker,
        UrlValidation(plain_token="t", event_ts=1),
        OtherWebhook(event="rtms.concurrency_limited", event_ts=1, payload={}),
    ) == [D.IGNORED, D.IGNORED]


def test_stopped_ids_are_bounded() -> None:
    tracker = StreamTracker(max_stopped=2)
    assert run(tracker, stopped("a"), stopped("b"), stopped("c")) == [D.UNKNOWN_STOP] * 3
    # "a" was forgotten, "b" and "c" are remembered.
    assert run(tracker, stopped("c"), stopped("b"), stopped("a")) == [
        D.DUPLICATE,
        D.DUPLICATE,
        D.UNKNOWN_STOP,
    ]
    # Remembering "a" again pushed out "b".
    assert run(tracker, stopped("b")) == [D.UNKNOWN_STOP]


def test_max_stopped_zero_remembers_nothing() -> None:
    tracker = StreamTracker(max_stopped=0)
    assert run(tracker, started(), stopped(), stopped(), started(ts=100)) == [
        D.NEW_STREAM,
        D.STOPPED,
        D.UNKNOWN_STOP,
        D.NEW_STREAM,
    ]


def test_default_bound_is_1024() -> None:
    tracker = StreamTracker()
    run(tracker, *(stopped(f"s{i}") for i in range(1025)))
    assert run(tracker, stopped("s1"), stopped("s0")) == [D.DUPLICATE, D.UNKNOWN_STOP]


@pytest.mark.parametrize("value", [-1, True, 1.5, "10"])
def test_bad_max_stopped(value: object) -> None:
    with pytest.raises(InvalidConfig, match="max_stopped"):
        StreamTracker(max_stopped=value)  # type: ignore[arg-type]


tracker_events = st.one_of(
    st.builds(
        started,
        stream=st.sampled_from(["s1", "s2", "s3"]),
        ts=st.one_of(st.none(), st.integers(0, 10)),
        url=st.sampled_from([URL_A, URL_B]),
    ),
    st.builds(
        stopped,
        stream=st.sampled_from(["s1", "s2", "s3"]),
        ts=st.one_of(st.none(), st.integers(0, 10)),
    ),
    st.builds(interrupted, stream=st.sampled_from(["s1", "s2", "s3"])),
)


@given(st.lists(tracker_events, max_size=40))
def test_tracker_invariants(events: list[WebhookEvent]) -> None:
    tracker = StreamTracker(max_stopped=2)
    for event in events:
        before = dict(tracker.live_streams())
        disposition = tracker.observe(event)
        after = dict(tracker.live_streams())
        assert isinstance(event, RtmsStarted | RtmsStopped | RtmsInterrupted)
        stream = event.rtms_stream_id
        was_live = stream in before
        if disposition in (D.NEW_STREAM, D.FAILOVER):
            assert was_live is (disposition is D.FAILOVER)
            assert after == {**before, stream: event}
        elif disposition is D.STOPPED:
            assert was_live
            assert stream not in after
        elif disposition is D.UNKNOWN_STOP:
            assert not was_live
        else:
            assert after == before
        assert (disposition is D.INTERRUPTED) == (isinstance(event, RtmsInterrupted) and was_live)
        # Zoom's retry of the very same delivery is always recognised.
        if isinstance(event, RtmsStarted | RtmsStopped) and disposition is not D.IGNORED:
            assert tracker.observe(event) is D.DUPLICATE
            assert dict(tracker.live_streams()) == after
