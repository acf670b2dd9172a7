"""Handshake signature and credentials (docs/protocol.md §8.3)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto import Credentials, InvalidConfig, handshake_signature

SECRET = "my-client-secret"
ARGS = {
    "client_id": "my-client-id",
    "client_secret": SECRET,
    "instance_id": "4444AAAiAAAAAiAiAiiAii==",
    "rtms_stream_id": "03db704592624398931a588dd78200cb",
}


def test_known_vector() -> None:
    # Computed once with: printf '%s' 'my-client-id,4444AAAiAAAAAiAiAiiAii==,03db…cb'
    #   | openssl dgst -sha256 -hmac 'my-client-secret'
    assert handshake_signature(**ARGS) == (
        "50bc92ae6a4a110bdc7a23cbef3d2494221182ef86adf56f60fdc1c176804461"
    )


text = st.text(min_size=1)


@given(client_id=text, client_secret=text, instance_id=text, rtms_stream_id=text)
def test_matches_independent_hmac(
    client_id: str, client_secret: str, instance_id: str, rtms_stream_id: str
) -> None:
    expected = hmac.new(
        client_secret.encode("utf-8"),
        (client_id + "," + instance_id + "," + rtms_stream_id).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    got = handshake_signature(
        client_id=client_id,
        client_secret=client_secret,
        instance_id=instance_id,
        rtms_stream_id=rtms_stream_id,
    )
    assert got == expected
    assert len(got) == 64
    assert got == got.lower()


@pytest.mark.parametrize("field", ["client_id", "instance_id", "rtms_stream_id", "client_secret"])
def test_each_input_changes_the_signature(field: str) -> None:
    changed = {**ARGS, field: ARGS[field] + "x"}
    assert handshake_signature(**changed) != handshake_signature(**ARGS)


def test_order_matters() -> None:
    # Other sources put the ids in another order (docs/protocol.md §12.24): not this one.
    swapped = {**ARGS, "instance_id": ARGS["rtms_stream_id"], "rtms_stream_id": ARGS["instance_id"]}
    assert handshake_signature(**swapped) != handshake_signature(**ARGS)


def test_fields_are_joined_with_commas() -> None:
    # The MOCK readme's comma-less variant must not be what we compute.
    no_commas = hmac.new(
        SECRET.encode(),
        (ARGS["client_id"] + ARGS["instance_id"] + ARGS["rtms_stream_id"]).encode(),
        hashlib.sha256,
    ).hexdigest()
    assert handshake_signature(**ARGS) != no_commas


@pytest.mark.parametrize("field", ["client_id", "client_secret", "instance_id", "rtms_stream_id"])
def test_empty_argument_refused_without_echoing_secret(field: str) -> None:
    with pytest.raises(InvalidConfig, match=field) as info:
        handshake_signature(**{**ARGS, field: ""})
    assert SECRET not in str(info.value)


def test_non_str_argument_refused() -> None:
    with pytest.raises(InvalidConfig, match="client_secret must be a str, not NoneType"):
        handshake_signature(
            client_id="id",
            client_secret=None,  # type: ignore[arg-type]
            instance_id="m",
            rtms_stream_id="s",
        )


def test_credentials_sign_equals_function() -> None:
    creds = Credentials(client_id="my-client-id", client_secret=SECRET)
    assert creds.sign(
        instance_id=ARGS["instance_id"], rtms_stream_id=ARGS["rtms_stream_id"]
    ) == handshake_signature(**ARGS)


def test_credentials_hide_the_secret() -> None:
    creds = Credentials(client_id="my-client-id", client_secret=SECRET)
    assert "my-client-id" in repr(creds)
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert SECRET not in f"{creds!r} {creds}"


def test_credentials_are_frozen_and_keyword_only() -> None:
    creds = Credentials(client_id="a", client_secret="b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.client_secret = "c"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Credentials("a", "b")  # type: ignore[call-arg]
    assert pickle.loads(pickle.dumps(creds)) == creds


@pytest.mark.parametrize(
    ("client_id", "client_secret", "field"),
    [("", "secret-value", "client_id"), ("id", "", "client_secret")],
)
def test_credentials_refuse_empty(client_id: str, client_secret: str, field: str) -> None:
    with pytest.raises(InvalidConfig, match=f"{field} must not be empty") as info:
        Credentials(client_id=client_id, client_secret=client_secret)
    assert "secret-value" not in str(info.value)
