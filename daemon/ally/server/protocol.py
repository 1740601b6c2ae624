"""The daemon protocol, version 1: the one schema module.

Every message that crosses the websocket is described here, as JSON Schema (draft 2020-12), and every
incoming message is validated here before any handler sees it. ``protocol.schema.json`` beside this file is
generated from :func:`json_schema` (``python -m ally.server.protocol --write``; a test checks it is current)
for the extension, which implements the same protocol. PROTOCOL.md is the prose.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..levels import Level
from ..protections import PROTECTIONS
from ..sites import load_sites
from .errors import ERRORS, ErrorCode, ProtocolError
from .limits import MAX_ID_CHARS, MAX_JSON_DEPTH

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
SUBPROTOCOL = "ally"  # an authenticated session (with a token)
PAIRING_SUBPROTOCOL = "ally.pair"  # a pairing session (no token yet; pairing methods only)
TOKEN_PREFIX = "ally.token."  # the token travels as the subprotocol value "ally.token.<token>"
BINARY_MAGIC = b"ALY1"
SCHEMA_PATH = Path(__file__).with_name("protocol.schema.json")

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
_ID_RE = re.compile(ID_PATTERN)

# Session kinds: who is on the other end (decided at the handshake, see auth.py).
EXTENSION, LOCAL, PAIRING = "extension", "local", "pairing"


# -- schema building blocks -----------------------------------------------------------------------------------


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False,
            **extra}


_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": ID_PATTERN}
_LEVEL = {"enum": [level.value for level in Level]}
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_COUNT = {"type": "integer", "minimum": 0}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
# What still shows after text protection (issue 11): the goal, stated facts left and why, held-out readers.
_TEXT_REPORT = _obj(
    {"goal_reached": {"type": "boolean"},
     "left": {"type": "array", "items": _obj({"category": {"type": "string"}, "text": {"type": "string"},
                                                "reason": {"type": "string"}}, ("category", "text", "reason"))},
     "reader": {"type": "array", "items": _obj(
         {"attribute": {"type": "string"}, "model": {"type": "string"}, "before": {"type": "string"},
          "before_confidence": _UNIT, "after": {"type": "string"}, "after_confidence": _UNIT, "baseline": _UNIT,
          "still_shows": {"type": "boolean"}},
         ("attribute", "model", "before", "before_confidence", "after", "after_confidence", "baseline",
          "still_shows"))},
     "notes": {"type": "array", "items": {"type": "string"}}},
    ("goal_reached", "left", "reader", "notes"))
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_IMAGE_FORMATS = ["same", "jpeg", "png", "webp"]
_ERROR = _obj(
    {
        "code": {"enum": [int(c) for c in ErrorCode]},
        "name": {"enum": [c.wire_name for c in ErrorCode]},
        "message": {"type": "string"},
        "data": {"type": "object"},
    },
    ("code", "name", "message"),
)
_CAPABILITY = {
    "type": "object",
    "properties": {"available": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["available"],
}


@dataclass(frozen=True)
class Method:
    """One request method: its params and result schemas, and who may call it."""

    params: dict[str, Any]
    result: dict[str, Any]
    sessions: frozenset[str]
    binary_in: bool = False  # the request is followed by one binary frame (the image)
    binary_out: bool = False  # a successful result is followed by one binary frame
    doc: str = ""


_ALL = frozenset({EXTENSION, LOCAL, PAIRING})
_WORK = frozenset({EXTENSION, LOCAL})

# Per cloaked face: does a recognizer outside the ensemble still match it after a site's JPEG and resize?
_RECEIPT = _obj(
    {"recognizer": {"type": "string", "maxLength": 100}, "condition": {"type": "string", "maxLength": 100},
     "found": {"type": "boolean"}, "matched": {"type": "boolean"}, "distance": {"type": ["number", "null"]},
     "threshold": {"type": "number"}, "ssimulacra2": {"type": "number"}},
    ("recognizer", "condition", "found", "matched", "distance", "threshold", "ssimulacra2"),
)

# What a photo gets (issue 12): faces (the cloak), emotion (expression hidden too), metadata (removed).
_PROTECT = {"type": "array", "items": {"enum": list(PROTECTIONS)}, "minItems": 1, "uniqueItems": True}
_CONFIDENCE = {"type": "number", "minimum": 0, "maximum": 1}
# Per face, with emotion: does an expression reader outside the ensemble still read the face's expression?
_EXPRESSION_RECEIPT = _obj(
    {"reader": {"type": "string", "maxLength": 100}, "condition": {"type": "string", "maxLength": 100},
     "found": {"type": "boolean"}, "clean": {"type": "string", "maxLength": 100}, "clean_confidence": _CONFIDENCE,
     "after": {"type": ["string", "null"], "maxLength": 100},
     "after_confidence": {"anyOf": [_CONFIDENCE, {"type": "null"}]}, "changed": {"type": "boolean"}},
    ("reader", "condition", "found", "clean", "clean_confidence", "after", "after_confidence", "changed"),
)

# Serve-size protection (issue 17): the site a photo goes to (the names of the one table, ally/sites.json).
_SITE = {"enum": list(load_sites())}
_SIZE = {"type": "integer", "minimum": 1}
_SERVED = _obj(
    {"site": {"anyOf": [_SITE, {"type": "null"}]}, "width": _SIZE, "height": _SIZE, "original_width": _SIZE,
     "original_height": _SIZE, "resized": {"type": "boolean"}, "full_size": {"type": "boolean"},
     "format": {"enum": ["JPEG", "PNG", "WEBP", "TIFF", "BMP"]},
     "quality": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 100}, {"type": "null"}]}},
    ("site", "width", "height", "original_width", "original_height", "resized", "full_size", "format", "quality"),
)
# "Protect me" (issue 17): the user's reference embeddings, listed by id; never a photo.
_REF_ID = {"type": "string", "pattern": "^[0-9a-f]{8}$"}
_REFERENCE = _obj(
    {"id": _REF_ID, "added": {"type": "string", "maxLength": 40}, "faces": {"type": "integer", "minimum": 1},
     "note": {"type": "string", "maxLength": 200}, "models": {"type": "array", "items": {"type": "string"}}},
    ("id", "added", "faces", "note", "models"),
)
_REFERENCES = _obj({"references": {"type": "array", "items": _REFERENCE}, "only_me": {"type": "boolean"}},
                   ("references", "only_me"))

METHODS: dict[str, Method] = {
    "hello": Method(
        params=_obj({"protocol": {"type": "integer", "minimum": 1},
                     "client": _obj({"name": _NAME, "version": {"type": "string", "maxLength": 50}}, ("name",))},
                    ("protocol",)),
        result=_obj(
            {
                "protocol": {"const": PROTOCOL_VERSION},
                "daemon": _obj({"name": {"const": "ally"}, "version": {"type": "string"}}, ("name", "version")),
                "session": _obj({"kind": {"enum": [EXTENSION, LOCAL, PAIRING]},
                                 "origin": {"type": ["string", "null"]}}, ("kind", "origin")),
                "capabilities": {"type": "object", "additionalProperties": _CAPABILITY},
                "limits": {"type": "object", "additionalProperties": {"type": "number"}},
            },
            ("protocol", "daemon", "session", "capabilities", "limits"),
        ),
        sessions=_ALL,
        doc="Must be the first message. Negotiates the protocol version; returns capabilities and limits.",
    ),
    "protect.image": Method(
        params=_obj(
            {
                "image": _obj({"bytes": {"type": "integer", "minimum": 1}, "type": {"type": "string",
                                                                                   "maxLength": 100}},
                              ("bytes",)),
                "level": _LEVEL,
                "format": {"enum": _IMAGE_FORMATS},
                "protect": _PROTECT,
                "site": _SITE,
                "full_size": {"type": "boolean"},
            },
            ("image",),
        ),
        result=_obj(
            {
                "image": _obj({"bytes": {"type": "integer", "minimum": 1}, "type": {"type": "string"},
                               "width": {"type": "integer", "minimum": 1},
                               "height": {"type": "integer", "minimum": 1}},
                              ("bytes", "type", "width", "height")),
                "level": _LEVEL,
                "faces": _COUNT,
                "cloaked": {"type": "boolean"},
                "similarity": {"type": "array", "items": {"type": "number"}},
                "receipt": {"type": "array", "items": _RECEIPT},
                "protect": _PROTECT,
                "expression_receipt": {"type": "array", "items": _EXPRESSION_RECEIPT},
                "device": {"type": "string"},
                "elapsed_ms": _COUNT,
                "served": _SERVED,
            },
            ("image", "level", "faces", "cloaked", "similarity", "protect", "expression_receipt", "device",
             "elapsed_ms", "served"),
        ),
        sessions=_WORK,
        binary_in=True,
        binary_out=True,
        doc="Protect one photo. The encoded image follows as a binary frame; the protected one comes back so.",
    ),
    "me.add": Method(
        params=_obj({"image": _obj({"bytes": {"type": "integer", "minimum": 1},
                                    "type": {"type": "string", "maxLength": 100}}, ("bytes",))}, ("image",)),
        result=_obj({"reference": _REFERENCE, "count": _COUNT}, ("reference", "count")),
        sessions=_WORK,
        binary_in=True,
        doc="Add a photo of the user for \"protect me\": its largest face's embeddings are kept, never the photo. "
            "The photo follows as a binary frame.",
    ),
    "me.list": Method(
        params=_obj({}),
        result=_REFERENCES,
        sessions=_WORK,
        doc="The user's references (id, date added, faces, note) and the only-me setting.",
    ),
    "me.forget": Method(
        params={"oneOf": [_obj({"id": _REF_ID}, ("id",)), _obj({"all": {"const": True}}, ("all",))]},
        result=_obj({"forgotten": _COUNT, "references": {"type": "array", "items": _REFERENCE}},
                    ("forgotten", "references")),
        sessions=_WORK,
        doc="Forget one reference (id) or all of them (all: true); answers with those left.",
    ),
    "protect.text": Method(
        params=_obj({"text": {"type": "string"}, "level": _LEVEL}, ("text",)),
        result=_obj(
            {"text": {"type": "string"}, "level": _LEVEL,
             "changes": {"type": "array", "items": {"type": "object"}},
             "device": {"type": "string"}, "elapsed_ms": _COUNT, "report": _TEXT_REPORT},
            ("text", "level", "changes", "device", "elapsed_ms"),
        ),
        sessions=_WORK,
        doc="Protect a text (stylometry). Answers 404 unsupported when no text protector is installed.",
    ),
    "cancel": Method(
        params=_obj({"job": _ID}, ("job",)),
        result=_obj({"job": _ID, "cancelled": {"const": True}}, ("job", "cancelled")),
        sessions=_WORK,
        doc="Cancel one of this connection's jobs (queued or running); the job's request then fails with 400.",
    ),
    "status": Method(
        params=_obj({}),
        result=_obj(
            {
                "daemon": _obj({"version": {"type": "string"}, "pid": {"type": "integer"},
                                "uptime_s": {"type": "number"}, "port": {"type": "integer"}},
                               ("version", "pid", "uptime_s", "port")),
                "device": {"type": "string"},
                "models": _obj({"state": {"enum": ["loading", "ready", "failed"]},
                                "ids": {"type": "array", "items": {"type": "string"}},
                                "error": {"type": "string"}}, ("state", "ids")),
                "queues": {"type": "array", "items": _obj(
                    {"device": {"type": "string"}, "kind": {"enum": ["image", "text", "text-long"]},
                     "queued": _COUNT, "running": _COUNT, "capacity": _COUNT},
                    ("device", "queued", "running", "capacity"))},
                "connections": _COUNT,
                "jobs": _obj({"completed": _COUNT, "failed": _COUNT, "cancelled": _COUNT, "busy": _COUNT},
                             ("completed", "failed", "cancelled", "busy")),
                "pairing": _obj({"store": {"type": "string"}, "secure": {"type": "boolean"}, "paired": _COUNT},
                                ("store", "secure", "paired")),
            },
            ("daemon", "device", "models", "queues", "connections", "jobs", "pairing"),
        ),
        sessions=_WORK,
        doc="What the daemon is doing: device, models, queue depth, connections, pairing store.",
    ),
    "settings": Method(
        params=_obj({"level": _LEVEL, "only_me": {"type": "boolean"}}),
        result=_obj({"level": _LEVEL, "device": {"type": "string"}, "only_me": {"type": "boolean"}},
                    ("level", "device")),
        sessions=_WORK,
        doc="Read the settings; with params, change them first (the default level and only-me are settable).",
    ),
    "pair.begin": Method(
        params=_obj({"name": _NAME}),
        result=_obj({"code": {"type": "string", "pattern": "^[0-9]{6}$"}, "expires_in_s": {"type": "number"}},
                    ("code", "expires_in_s")),
        sessions=frozenset({PAIRING}),
        doc="Ask to pair; show the code to the user, who confirms it with `ally pair --confirm CODE`.",
    ),
    "pair.confirm": Method(
        params=_obj({"code": {"type": "string", "pattern": "^[0-9]{6}$"}}, ("code",)),
        result=_obj({"origin": {"type": "string"}, "name": {"type": "string"}}, ("origin", "name")),
        sessions=frozenset({LOCAL}),
        doc="Local tools only: approve the pending pairing that shows this code.",
    ),
}

NOTIFICATIONS: dict[str, dict[str, Any]] = {
    "progress": _obj({"job": _ID, "stage": {"type": "string"}, "fraction": _FRACTION}, ("job", "stage", "fraction")),
    "pair.completed": _obj({"origin": {"type": "string"}, "token": {"type": "string"}}, ("origin", "token")),
    "pair.failed": _obj({"error": _ERROR}, ("error",)),
    "shutdown": _obj({"reason": {"type": "string"}, "grace_s": {"type": "number"}}, ("reason", "grace_s")),
}


def json_schema() -> dict[str, Any]:
    """The whole protocol as one JSON Schema document (what protocol.schema.json holds)."""
    defs: dict[str, Any] = {"id": _ID, "level": _LEVEL, "error": _ERROR}
    requests, responses = [], []
    for name, m in METHODS.items():
        defs[f"params:{name}"] = m.params
        defs[f"result:{name}"] = m.result
        requests.append(_obj({"id": {"$ref": "#/$defs/id"}, "method": {"const": name},
                              "params": {"$ref": f"#/$defs/params:{name}"}}, ("id", "method")))
        responses.append(_obj({"id": {"$ref": "#/$defs/id"}, "result": {"$ref": f"#/$defs/result:{name}"}},
                              ("id", "result"), **{"x-ally-method": name}))
    notifications = []
    for name, params in NOTIFICATIONS.items():
        defs[f"notification:{name}"] = params
        notifications.append(_obj({"method": {"const": name}, "params": {"$ref": f"#/$defs/notification:{name}"}},
                                  ("method", "params")))
    defs["envelope"] = _obj({"id": {"$ref": "#/$defs/id"}, "method": {"type": "string", "maxLength": 100},
                             "params": {"type": "object"}}, ("id", "method"))
    defs["clientMessage"] = {"oneOf": requests}
    defs["errorResponse"] = _obj({"id": {"anyOf": [{"$ref": "#/$defs/id"}, {"type": "null"}]},
                                  "error": {"$ref": "#/$defs/error"}}, ("id", "error"))
    defs["serverMessage"] = {"anyOf": [*responses, {"$ref": "#/$defs/errorResponse"}, *notifications]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ally:daemon-protocol:{PROTOCOL_VERSION}",
        "title": f"Ally daemon protocol, version {PROTOCOL_VERSION}",
        "description": "Generated from ally/server/protocol.py; the prose is daemon/PROTOCOL.md.",
        "x-ally-protocol": {
            "version": PROTOCOL_VERSION,
            "subprotocol": SUBPROTOCOL,
            "pairing_subprotocol": PAIRING_SUBPROTOCOL,
            "token_prefix": TOKEN_PREFIX,
            "binary_frame": {"magic": BINARY_MAGIC.decode("ascii"), "layout": "magic[4] id_length[1] id[id_length] "
                             "payload[...]", "max_id_bytes": MAX_ID_CHARS},
            "methods": {name: {"sessions": sorted(m.sessions), "binary_in": m.binary_in,
                               "binary_out": m.binary_out, "doc": m.doc} for name, m in METHODS.items()},
            "errors": [{"code": int(c), "name": c.wire_name, "message": ERRORS[c].message,
                        "retry": ERRORS[c].retry} for c in ErrorCode],
        },
        "anyOf": [{"$ref": "#/$defs/clientMessage"}, {"$ref": "#/$defs/serverMessage"}],
        "$defs": defs,
    }


# -- validation ---------------------------------------------------------------------------------------------

_SCHEMA = json_schema()


def _validator(definition: str) -> Draft202012Validator:
    return Draft202012Validator({"$defs": _SCHEMA["$defs"], "$ref": f"#/$defs/{definition}"})


_ENVELOPE = _validator("envelope")
_PARAMS = {name: _validator(f"params:{name}") for name in METHODS}
_SERVER_MESSAGE = _validator("serverMessage")


@dataclass(frozen=True)
class Request:
    id: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> Method:
        return METHODS[self.method]


def _schema_error(validator: Draft202012Validator, instance: Any, where: str) -> str | None:
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    path = ".".join(str(p) for p in error.absolute_path)
    return f"{where}{'.' + path if path else ''}: {error.message}"


def parse_request(text: str, max_depth: int = MAX_JSON_DEPTH) -> Request:
    """Parse and validate one client message; raises :class:`RequestError` (with the id once it is known).

    Whatever the text, the answer is a :class:`RequestError` with a numbered error, never another exception:
    JSON that Python's parser refuses beyond the grammar (integers over 4 300 digits, nesting that exhausts
    the recursion limit), nesting deeper than ``max_depth`` (checked before the schema validator, which
    recurses), and strings that are not valid Unicode (a lone UTF-16 surrogate such as ``"\\ud800"``, which
    JSON's escapes can carry but no UTF-8 text can) are refused here, at the boundary.
    """
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(None, ProtocolError(ErrorCode.MALFORMED_JSON, f"not valid JSON: {e.msg} at position "
                                                                         f"{e.pos}")) from None
    except RecursionError:
        raise RequestError(None, _too_deep(max_depth)) from None
    except ValueError:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        raise RequestError(None, ProtocolError(ErrorCode.INVALID_MESSAGE, "a number in the message has more "
                                                                          "digits than the daemon reads")) from None
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise RequestError(request_id(message), _too_deep(max_depth))
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(message):
        raise RequestError(request_id(message), ProtocolError(
            ErrorCode.INVALID_MESSAGE, "the message holds a lone UTF-16 surrogate (\\ud800-\\udfff); strings must "
                                       "be valid Unicode"))
    problem = _schema_error(_ENVELOPE, message, "message")
    if problem:
        raise RequestError(request_id(message), ProtocolError(ErrorCode.INVALID_MESSAGE, problem))
    method, rid = message["method"], message["id"]
    if method not in METHODS:
        raise RequestError(rid, ProtocolError(ErrorCode.UNKNOWN_METHOD, f"no method {method!r}; methods: "
                                                                         f"{', '.join(METHODS)}"))
    params = message.get("params", {})
    problem = _schema_error(_PARAMS[method], params, "params")
    if problem:
        raise RequestError(rid, ProtocolError(ErrorCode.INVALID_MESSAGE, problem))
    return Request(rid, method, params)


# A JSON string literal (the unrolled form: no backtracking), everything but brackets, surrogate escapes.
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_DEPTH_STEP = [0] * 256
_DEPTH_STEP[ord("[")] = _DEPTH_STEP[ord("{")] = 1
_DEPTH_STEP[ord("]")] = _DEPTH_STEP[ord("}")] = -1


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (valid JSON). Linear and without recursion: string
    literals are cut out and the brackets left are counted, in C (re, map, accumulate) rather than a Python
    loop, so that a 200 kB message costs a few milliseconds whatever its shape."""
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text)).encode("ascii")
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _too_deep(max_depth: int) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_MESSAGE, f"the message nests deeper than {max_depth} levels")


def _valid_unicode(message: Any) -> bool:
    try:
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RequestError(Exception):
    """A :class:`ProtocolError` about a request whose id could be read."""

    def __init__(self, request_id: str | None, error: ProtocolError):
        self.request_id = request_id
        self.error = error
        super().__init__(str(error))


def request_id(message: Any) -> str | None:
    """The message's id if it is a valid one (so an error can be addressed to it), else None."""
    if isinstance(message, dict):
        rid = message.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS and _ID_RE.match(rid):
            return rid
    return None


def validate_server_message(message: dict[str, Any]) -> None:
    """Raise ``ValueError`` if a message the daemon sends is not in the schema (used by the tests)."""
    problem = _schema_error(_SERVER_MESSAGE, message, "server message")
    if problem:
        raise ValueError(problem)


def validate_result(method: str, result: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``result`` is not what ``method`` returns (used by the tests)."""
    problem = _schema_error(_validator(f"result:{method}"), result, f"result of {method}")
    if problem:
        raise ValueError(problem)


# -- messages the daemon sends ------------------------------------------------------------------------------


def response(rid: str, result: dict[str, Any]) -> str:
    return json.dumps({"id": rid, "result": result}, separators=(",", ":"))


def error_response(rid: str | None, error: ProtocolError) -> str:
    return json.dumps({"id": rid, "error": error.to_wire()}, separators=(",", ":"))


def notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"method": method, "params": params}, separators=(",", ":"))


# -- binary frames ------------------------------------------------------------------------------------------


def pack_binary(rid: str, payload: bytes) -> bytes:
    """``magic | len(id) | id | payload``: the image of request ``rid``."""
    raw = rid.encode("ascii")
    return b"".join((BINARY_MAGIC, bytes((len(raw),)), raw, payload))


def unpack_binary(frame: bytes) -> tuple[str, memoryview]:
    """(request id, payload view) of a binary frame; raises :class:`ProtocolError` if the header is bad."""
    view = memoryview(frame)
    if len(frame) < 6 or bytes(view[:4]) != BINARY_MAGIC:
        raise ProtocolError(ErrorCode.UNEXPECTED_BINARY, "a binary frame must start with 'ALY1', the id length and "
                                                         "the request id")
    n = frame[4]
    rid_bytes = bytes(view[5:5 + n])
    rid = rid_bytes.decode("ascii", errors="replace")
    if n == 0 or n > MAX_ID_CHARS or len(rid_bytes) != n or not _ID_RE.match(rid):
        raise ProtocolError(ErrorCode.UNEXPECTED_BINARY, "the binary frame's request id is not a valid id")
    return rid, view[5 + n:]


def main(argv: list[str]) -> int:
    """``python -m ally.server.protocol [--write | --check]``: print, write or check protocol.schema.json."""
    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if "--write" in argv:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if "--check" in argv:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is out of date; run python -m ally.server.protocol --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
