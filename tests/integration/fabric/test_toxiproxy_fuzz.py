"""Malformed requests against the Toxiproxy-compatible API: every one gets a 4xx in
Toxiproxy's error shape, never a 500 (bodies that are not UTF-8, not JSON, of the wrong
JSON type, with wrong field types, on every route)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_toxiproxy_api import Call, call  # noqa: F401 - the fixture

PROXY = {"name": "fz", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "enabled": True}
ROUTES = [
    ("POST", "/proxies"),
    ("POST", "/populate"),
    ("POST", "/proxies/fz"),
    ("PATCH", "/proxies/fz"),
    ("POST", "/proxies/fz/toxics"),
    ("POST", "/proxies/fz/toxics/lat"),
    ("PATCH", "/proxies/fz/toxics/lat"),
    ("POST", "/proxies/nothing/toxics"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Objects with the API's own field names and values of any type: the likeliest to get deep.
FIELDS = ["name", "listen", "upstream", "enabled", "type", "stream", "toxicity", "attributes"]
shaped = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
attributes = st.fixed_dictionaries(
    {"type": st.sampled_from(["latency", "bandwidth", "timeout", "slicer", "nope"])},
    optional={"attributes": st.dictionaries(st.text(max_size=8), json_values, max_size=3)},
)
bodies = (
    st.binary(max_size=40).map(lambda raw: ("raw", raw))
    | json_values.map(lambda value: ("json", value))
    | shaped.map(lambda value: ("json", value))
    | attributes.map(lambda value: ("json", value))
)


def toxiproxy_error(status: int, body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("status") == status
        and isinstance(body.get("error"), str)
    )


# One server for all examples: the routes reset it before each.
@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_malformed_requests_get_a_400_in_toxiproxys_shape(
    call: Call,  # noqa: F811 - the fixture imported above
    route: tuple[str, str],
    body: tuple[str, Any],
) -> None:
    method, path = route
    call("POST", "/reset")
    call("POST", "/proxies", dict(PROXY))
    call("POST", "/proxies/fz/toxics", {"name": "lat", "type": "latency", "attributes": {}})
    kind, value = body
    if kind == "raw":
        status, answer = call(method, path, raw=value)
    else:
        status, answer = call(method, path, raw=json.dumps(value).encode())
    assert status < 500, (method, path, value, answer)
    if status >= 400:
        assert toxiproxy_error(status, answer), answer
