"""A JSON payload ⇄ its zlib-compressed form, told apart by the first byte; inflating never makes more than a cap.

A JSON payload starts with `{`. A compressed payload is a zlib stream (RFC 1950: deflate, a 32 KiB window,
an Adler-32 check) whose first byte is therefore 0x78, `x`, which no JSON text starts with. It may name a
preset dictionary (the RFC's FDICT flag and DICTID, the Adler-32 of the dictionary): this module knows one,
`DICTIONARY_V1`, the vocabulary of a telemetry batch, which saves about 40 % on a batch of 1 KiB. Its bytes
are part of the protocol and never change; a new dictionary would get a new id beside it.

`inflate_payload` is what a receiver calls on untrusted bytes: a plain payload comes back as it is; a
compressed one is inflated into at most `limit` bytes, so a zip bomb is refused (`too_large`) without ever
allocating more, and a damaged stream raises ProtocolError (`truncated`, `malformed`,
`unsupported_version` for a dictionary it does not know) and nothing else.
"""

from __future__ import annotations

import zlib

from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["DICTIONARY_V1", "ZLIB_FIRST_BYTE", "compress_payload", "inflate_payload", "is_compressed"]

ZLIB_FIRST_BYTE = 0x78  # CMF: deflate (8) with a 32 KiB window (7 << 4)
_FDICT = 0x20

# NOTE: frozen: receivers find it by its Adler-32 (DICTID). Strings that recur in telemetry batches, in the
# canonical key order; the most common ones last, where deflate reaches them with the shortest distances.
DICTIONARY_V1 = (
    b'{"accuracy":{"output":{"correct":0,"labelled":0}},"confidence":{"output":[0,0,0,0,0,0,0,0,0,0]},'
    b'"counts":{"calls":0,"dropped":0,"errors":0},"drift":{"input":{"0":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],'
    b'"1":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}},"output_values":{"output":[0,0,0,0]},"samples":[{"inputs":'
    b'{"input":{"data":"AAAAAAAAAAAAAAAAAAAA","dtype":"float32","shape":[1,3,224,224]}},"request_id":"1"}],'
    b'"memory":{"peak_rss_bytes":100000000,"rss_bytes":100000000},"model":{"name":"model","release":1000000,'
    b'"sha256":"0123456789abcdef","version":"1.0.0"},"output_classes":{"logits":[100,200,300,400,500,600,700,'
    b'800,900],"period_end":1700000000,"period_start":1700000000,"schema":"edgeml/v1/telemetry","seq":1,"v":1}\n'
    b'"latency_ms":{"alpha":0.01,"count":1000,"counts":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,1,1,'
    b"1,1,1,1,1,1,1,2,1,1,1,2,2,2,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
    b'1,1,1,1,1,1],"keys":[-200,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,'
    b"1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2,1,1,1,1,2,3,4,5],"
    b'"max":0.1,"max_buckets":2048,"min":0.01,"schema":"edgeml/ddsketch","sum":100.0,"v":1,"zero":0},'
    b'"memory":{"peak_rss_bytes":100000000,"rss_bytes":100000000},"model":{"name":"'
)
DICTIONARIES = {zlib.adler32(DICTIONARY_V1): DICTIONARY_V1}  # DICTID → dictionary


def is_compressed(data: bytes) -> bool:
    return len(data) > 0 and data[0] == ZLIB_FIRST_BYTE


def compress_payload(payload: bytes) -> bytes:
    """A JSON payload → its zlib stream with `DICTIONARY_V1`, when that is shorter; else `payload` itself."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    packed = packer.compress(payload) + packer.flush()
    return packed if len(packed) < len(payload) else payload


def inflate_payload(data: bytes, limit: int) -> bytes:
    """Received bytes → the JSON bytes they carry (a plain payload unchanged), at most `limit` of them."""
    if not is_compressed(data):
        return data
    inflater = zlib.decompressobj(15, zdict=_dictionary(data)) if _wants_dictionary(data) else zlib.decompressobj(15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ProtocolError("malformed", f"compressed payload is damaged: {exc}") from None
    if len(out) > limit:
        raise ProtocolError("too_large", f"compressed payload inflates to more than {limit} bytes")
    if not inflater.eof:
        raise ProtocolError("truncated", f"compressed payload ends early ({len(data)} bytes; the stream goes on)")
    if inflater.unused_data:
        raise ProtocolError("malformed", f"{len(inflater.unused_data)} byte(s) after the end of the compressed stream")
    return out


def _wants_dictionary(data: bytes) -> bool:
    if len(data) < 2:
        raise ProtocolError("truncated", "compressed payload is shorter than its 2-byte zlib header")
    if (data[0] << 8 | data[1]) % 31:
        raise ProtocolError("malformed", "compressed payload's zlib header fails its check (FCHECK)")
    return bool(data[1] & _FDICT)


def _dictionary(data: bytes) -> bytes:
    if len(data) < 6:
        raise ProtocolError("truncated", "compressed payload ends inside its dictionary id")
    dict_id = int.from_bytes(data[2:6], "big")
    dictionary = DICTIONARIES.get(dict_id)
    if dictionary is None:
        raise ProtocolError(
            "unsupported_version", f"compressed payload needs preset dictionary {dict_id:#010x}, unknown here",
            f"this receiver knows {', '.join(f'{i:#010x}' for i in DICTIONARIES)}: upgrade it, or the sender",
        )  # fmt: skip
    return dictionary
