"""The protocol's single source of truth stays single: the schema file, PROTOCOL.md and the code agree."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ally.server import limits as limits_module
from ally.server.errors import ERRORS, ErrorCode
from ally.server.handlers import HANDLERS
from ally.server.limits import Limits
from ally.server.protocol import (METHODS, NOTIFICATIONS, SCHEMA_PATH, ProtocolError, RequestError, json_schema,
                                  pack_binary, parse_request, unpack_binary, validate_server_message)

PROTOCOL_MD = Path(__file__).parents[2] / "daemon" / "PROTOCOL.md"


def test_schema_file_is_generated_from_the_module() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema(), \
        "run: python -m ally.server.protocol --write"
    Draft202012Validator.check_schema(json_schema())


def test_every_method_has_one_handler() -> None:
    assert set(HANDLERS) == set(METHODS)


def test_error_table_in_the_document_matches_the_code() -> None:
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \| (\d{3}) \| (yes|no) \| (.+?) \|$", PROTOCOL_MD.read_text(), re.M)
    documented = {int(code): (name, int(status), retry == "yes", message)
                  for code, name, status, retry, message in rows}
    expected = {int(c): (c.wire_name, ERRORS[c].http_status, ERRORS[c].retry, ERRORS[c].message) for c in ErrorCode}
    assert documented == expected


def test_every_method_and_notification_is_documented() -> None:
    text = PROTOCOL_MD.read_text()
    for name in METHODS:
        assert re.search(rf"^### {re.escape(name)}\b", text, re.M), name
    for name in NOTIFICATIONS:
        assert f"`{name}`" in text, name


def _examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)\n```", PROTOCOL_MD.read_text(), re.S)
    return [json.loads(b) for b in blocks]


@pytest.mark.parametrize("example", _examples(), ids=lambda e: str(e.get("method") or e.get("id")))
def test_document_examples_are_valid_messages(example: dict[str, object]) -> None:
    if "method" in example and "id" in example:  # a request: through the daemon's own parser
        parse_request(json.dumps(example))
    else:
        validate_server_message(example)


def test_limits_are_named_constants() -> None:
    for f in fields(Limits):
        assert getattr(limits_module, f.name.upper()) == f.default, f.name


def test_binary_frames() -> None:
    frame = pack_binary("p-1", b"\xff\xd8payload")
    assert frame[:4] == b"ALY1" and frame[4] == 3
    rid, payload = unpack_binary(frame)
    assert rid == "p-1" and bytes(payload) == b"\xff\xd8payload"
    for bad in (b"", b"ALY1", b"XXXX\x01a", b"ALY1\x00x", b"ALY1\x05ab", b"ALY1\x02a b", b"ALY1\x41" + b"a" * 65):
        with pytest.raises(ProtocolError) as info:
            unpack_binary(bad)
        assert info.value.code == ErrorCode.UNEXPECTED_BINARY


def test_parse_request_codes() -> None:
    assert parse_request('{"id": "a", "method": "status"}').params == {}
    cases = {'{"id": "a", ': ErrorCode.MALFORMED_JSON, '{"id": "a", "method": "nope"}': ErrorCode.UNKNOWN_METHOD,
             '{"id": "a", "method": "hello", "params": {"protocol": "1"}}': ErrorCode.INVALID_MESSAGE,
             '{"id": "a", "method": "status", "extra": 1}': ErrorCode.INVALID_MESSAGE}
    for text, code in cases.items():
        with pytest.raises(RequestError) as info:
            parse_request(text)
        assert info.value.error.code == code
