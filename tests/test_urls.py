"""Server URL parsing, the host allowlist and region codes."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto import DisallowedHost, InvalidConfig
from rtms_proto._urls import (
    DEFAULT_ALLOWED_HOSTS,
    KNOWN_REGIONS,
    ServerUrl,
    parse_server_url,
    region_of,
)

ANY = ("*",)


def test_default_allowlist() -> None:
    assert DEFAULT_ALLOWED_HOSTS == ("zoom.us", "zoom.com", "zoomgov.com")


def test_typical_zoom_url() -> None:
    url = "wss://rtms-sjc1.zoom.us/"
    assert parse_server_url(url) == ServerUrl(
        url=url,
        scheme="wss",
        host="rtms-sjc1.zoom.us",
        port=443,
        resource="/",
        secure=True,
    )


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("wss://zoom.us", ("wss", "zoom.us", 443, "/", True)),
        ("ws://zoom.us", ("ws", "zoom.us", 80, "/", False)),
        ("WSS://RTMS.Zoom.US/Path?Q=1", ("wss", "rtms.zoom.us", 443, "/Path?Q=1", True)),
        ("wss://a.zoom.us:8443/x/y?z=1&w=2", ("wss", "a.zoom.us", 8443, "/x/y?z=1&w=2", True)),
        ("wss://a.zoom.us?token=abc", ("wss", "a.zoom.us", 443, "/?token=abc", True)),
        ("wss://a.zoom.us:/", ("wss", "a.zoom.us", 443, "/", True)),
        ("wss://a.zoom.us.:1/", ("wss", "a.zoom.us", 1, "/", True)),
        ("ws://a.zoom.us:65535", ("ws", "a.zoom.us", 65535, "/", False)),
        ("wss://zoomgov.com/", ("wss", "zoomgov.com", 443, "/", True)),
        ("wss://x_y.rtms.zoom.com/", ("wss", "x_y.rtms.zoom.com", 443, "/", True)),
    ],
)
def test_parts(url: str, parts: tuple[str, str, int, str, bool]) -> None:
    parsed = parse_server_url(url)
    assert parsed.url == url  # kept verbatim
    assert (parsed.scheme, parsed.host, parsed.port, parsed.resource, parsed.secure) == parts


@pytest.mark.parametrize(
    ("url", "allowed", "host", "port", "authority"),
    [
        ("ws://[::1]:8080/rtms", ("::1",), "::1", 8080, "[::1]:8080"),
        ("ws://[::1]/", ("[::1]",), "::1", 80, "[::1]"),
        ("wss://[2001:DB8:0:0::1]/", ("2001:db8::1",), "2001:db8::1", 443, "[2001:db8::1]"),
        ("ws://127.0.0.1:9000/", ("127.0.0.1",), "127.0.0.1", 9000, "127.0.0.1:9000"),
        ("ws://localhost:80/", ("LOCALHOST.",), "localhost", 80, "localhost"),
        ("wss://rtms.zoom.us:443/", DEFAULT_ALLOWED_HOSTS, "rtms.zoom.us", 443, "rtms.zoom.us"),
        ("wss://rtms.zoom.us:80/", DEFAULT_ALLOWED_HOSTS, "rtms.zoom.us", 80, "rtms.zoom.us:80"),
    ],
)
def test_ip_literals_and_authority(
    url: str, allowed: tuple[str, ...], host: str, port: int, authority: str
) -> None:
    parsed = parse_server_url(url, allowed_hosts=allowed)
    assert (parsed.host, parsed.port, parsed.authority) == (host, port, authority)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://zoom.us/", "scheme must be ws or wss"),
        ("http://zoom.us/", "scheme must be ws or wss"),
        ("zoom.us/path", "scheme must be ws or wss"),
        ("", "scheme must be ws or wss"),
        ("wss:zoom.us", r"must start with wss://"),
        ("wss:/zoom.us", r"must start with wss://"),
        ("wss://", "has no host"),
        ("wss:///path", "has no host"),
        ("wss://:443/", "has no host"),
        ("wss://zoom.us#frag", "fragment"),
        ("wss://zoom.us:0/", "port '0'"),
        ("wss://zoom.us:65536/", "port '65536'"),
        ("wss://zoom.us:123456/", "port '123456'"),
        ("wss://zoom.us:+443/", "port"),
        ("wss://zoom.us:44a/", "port"),
        ("wss://zoom.us:443:1/", "port"),
        ("wss://[::1/", "unterminated IPv6"),
        ("wss://[::1]x/", "junk after the IPv6"),
        ("wss://[not-ip]/", "not a valid IPv6"),
        ("wss://[fe80::1%25eth0]/", "not a valid IPv6"),
        ("wss://a..zoom.us/", "not a valid host name"),
        ("wss://-a.zoom.us/", "not a valid host name"),
        ("wss://a-.zoom.us/", "not a valid host name"),
        ("wss://a%2e.zoom.us/", "not a valid host name"),
        ("wss://a*.zoom.us/", "not a valid host name"),
        ("wss://" + "a" * 64 + ".zoom.us/", "not a valid host name"),
        ("wss://" + "a." * 124 + "zoom.us/", "not a valid host name"),
        ("wss://1.2.3.4.5/", "not a valid host name"),
        ("wss://zoom.us.123/", "not a valid host name"),
        ("wss://zoom.us /", "ASCII without spaces"),
        ("wss://zoom.us\t/", "ASCII without spaces"),
        ("wss://evil.com\\.zoom.us/", "backslashes"),
        ("wss://zoom.us/\x7f", "control characters"),
        ("wss://z\u043e\u043em.us/", "ASCII"),  # Cyrillic o's
    ],
)
def test_malformed_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as info:
        parse_server_url(url, allowed_hosts=ANY)
    assert not isinstance(info.value, DisallowedHost)


def test_non_str_url() -> None:
    with pytest.raises(InvalidConfig, match="must be a str, not bytes"):
        parse_server_url(b"wss://zoom.us/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "wss://user:hunter2@rtms.zoom.us/",
        "wss://hunter2@rtms.zoom.us/",
        "wss://evil.com@rtms.zoom.us/",
        "wss://rtms.zoom.us@evil.com/",
        "wss://:hunter2@[::1]/",
    ],
)
def test_userinfo_refused_and_not_echoed(url: str) -> None:
    with pytest.raises(InvalidConfig, match="credentials") as info:
        parse_server_url(url, allowed_hosts=ANY)
    assert "hunter2" not in str(info.value)
    assert not isinstance(info.value, DisallowedHost)


def test_errors_do_not_echo_the_path_or_query() -> None:
    with pytest.raises(DisallowedHost) as info:
        parse_server_url("wss://evil.example/secret-path?token=s3cr3t")
    assert "s3cr3t" not in str(info.value)
    assert "secret-path" not in str(info.value)
    assert "evil.example" in str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        "zoom.us",
        "ZOOM.US",
        "zoom.us.",
        "rtms-sjc1.zoom.us",
        "a.b.c.zoom.us",
        "zoom.com",
        "rtms.zoom.com",
        "zoomgov.com",
        "rtms-iad.zoomgov.com",
    ],
)
def test_default_allowlist_accepts_zoom_hosts(host: str) -> None:
    assert parse_server_url(f"wss://{host}/").host == host.lower().rstrip(".")


@pytest.mark.parametrize(
    "host",
    [
        "evilzoom.us",
        "zoom.us.evil.com",
        "zoom.us-evil.com",
        "zoomxus",
        "zoom.usa",
        "us",
        "com",
        "zoomgov.co",
        "notzoomgov.com",
        "zoom.com.evil",
        "evil.com",
        "127.0.0.1",
        "[::1]",
    ],
)
def test_default_allowlist_refuses_lookalikes(host: str) -> None:
    with pytest.raises(DisallowedHost, match="not in the allowed hosts"):
        parse_server_url(f"wss://{host}/")


def test_disallowed_host_is_invalid_config() -> None:
    with pytest.raises(InvalidConfig):
        parse_server_url("wss://evil.com/")


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        (("example.test",), "example.test", True),
        (("example.test",), "a.example.test", True),
        (("Example.Test.",), "a.EXAMPLE.test", True),
        ((" example.test ",), "example.test", True),
        (("a.example.test",), "example.test", False),
        (("a.example.test",), "b.example.test", False),
        (("example.test",), "badexample.test", False),
        (("10.0.0.1",), "10.0.0.1", True),
        (("1.0.0.1",), "10.0.0.1", False),
        (("::1",), "[::1]", True),
        (("::1",), "[::2]", False),
        (("*",), "anything.example", True),
        (("*",), "[::1]", True),
        (("*",), "192.0.2.1", True),
        ((), "zoom.us", False),
    ],
)
def test_custom_allowlists(allowed: tuple[str, ...], host: str, ok: bool) -> None:
    if ok:
        parse_server_url(f"ws://{host}/", allowed_hosts=allowed)
    else:
        with pytest.raises(DisallowedHost):
            parse_server_url(f"ws://{host}/", allowed_hosts=allowed)


def test_ip_entry_does_not_allow_names_ending_like_it() -> None:
    # "1.2.3.4" allows that address only, never a DNS name under it.
    with pytest.raises(InvalidConfig):
        parse_server_url("ws://x.1.2.3.4/", allowed_hosts=("1.2.3.4",))


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        ("zoom.us", "not a single str"),
        (("",), "is not a host name"),
        (("*.zoom.us",), "write 'zoom.us'"),
        (("zoom..us",), "is not a host name"),
        (("[::1",), "not a valid IPv6"),
        (("fe80::zz",), "not a valid IPv6"),
        (("fe80::1%eth0",), "zone ids"),
        ((None,), "must be str, not NoneType"),
    ],
)
def test_bad_allowlist_is_caller_misuse(allowed: object, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as info:
        parse_server_url("wss://zoom.us/", allowed_hosts=allowed)  # type: ignore[arg-type]
    assert not isinstance(info.value, DisallowedHost)


def test_server_url_is_frozen() -> None:
    parsed = parse_server_url("wss://zoom.us/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.host = "evil.com"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("rtms-sjc1.zoom.us", "sjc"),
        ("zoom-rtms-iad-2.zoom.us", "iad"),
        ("rtms.fra.zoom.us", "fra"),
        ("RTMS-SYD01.ZOOM.US.", "syd"),
        ("ams.zoom.us", "ams"),
        ("rtms-mel.zoom.us", "mel"),
        ("yyz3-rtms.zoom.us", "yyz"),
        ("rtms-hkg1.zoom.com", "hkg"),
        ("rtms-nrt1-sin2.zoom.us", "nrt"),
        ("rtms.zoom.us", None),
        ("zoom.us", None),
        ("rtms-xyz1.zoom.us", None),
        ("rtms-sjcx.zoom.us", None),  # 'sjcx' is not a code plus digits
        ("rtmssjc1.zoom.us", None),
        ("sjc", None),  # a lone label is the TLD
        ("rtms.sjc", None),
        ("127.0.0.1", None),
        ("::1", None),
        ("", None),
    ],
)
def test_region_of(host: str, region: str | None) -> None:
    assert region_of(host) == region


def test_region_property() -> None:
    assert parse_server_url("wss://rtms-dfw4.zoom.us/").region == "dfw"
    assert parse_server_url("wss://rtms.zoom.us/").region is None


def test_known_regions_are_three_lowercase_letters() -> None:
    assert {"sjc", "iad", "sin", "fra", "syd", "ams", "nrt", "mel", "yyz", "hkg"} <= KNOWN_REGIONS
    assert all(len(code) == 3 and code.isalpha() and code.islower() for code in KNOWN_REGIONS)


labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda label: not label.isdigit()
)


@given(st.lists(labels, min_size=1, max_size=4), st.sampled_from(DEFAULT_ALLOWED_HOSTS))
def test_every_subdomain_of_a_zoom_domain_is_allowed(parts: list[str], domain: str) -> None:
    host = ".".join([*parts, domain])
    assert parse_server_url(f"wss://{host}/").host == host


@given(labels, st.lists(labels, min_size=1, max_size=4), st.sampled_from(DEFAULT_ALLOWED_HOSTS))
def test_hosts_not_under_a_zoom_domain_are_refused(
    prefix: str, parts: list[str], domain: str
) -> None:
    # Glued on without a dot: a lookalike, never a subdomain.
    with pytest.raises(DisallowedHost):
        parse_server_url(f"wss://{prefix}{domain}/")
    with pytest.raises(DisallowedHost):
        parse_server_url(f"wss://{domain}.{'.'.join(parts)}.example/")


@given(st.text(max_size=60))
def test_parser_only_raises_invalid_config(url: str) -> None:
    try:
        parsed = parse_server_url(url, allowed_hosts=ANY)
    except InvalidConfig:
        return
    assert parsed.scheme in ("ws", "wss")
    assert parsed.resource.startswith("/")
    assert 1 <= parsed.port <= 65535
