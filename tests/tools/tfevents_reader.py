#!/usr/bin/env python3
"""Independent reader of TensorBoard event files (standard library only).

Checks the TFRecord framing of every record (u64 length, masked CRC-32C of the length bytes, data,
masked CRC-32C of the data) with its own CRC-32C, decodes each tensorflow.Event with a generic
protobuf wire-format decoder, and prints JSON:
  {"records": N, "file_version": "...", "events": [{"wall_time", "step", "scalars": {tag: value},
   "session_status": int|null}, ...]}
Exit 1 with a message on any framing, checksum or decoding error.

  tfevents_reader.py FILE          decode FILE
  tfevents_reader.py --self-test   check the CRC-32C against published test vectors (RFC 3720 B.4)
"""
import json
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# RFC 3720 (iSCSI) appendix B.4, and the common "123456789" check value.
VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]


def self_test() -> None:
    for data, want in VECTORS:
        got = crc32c(data)
        if got != want:
            raise SystemExit(f"crc32c self-test failed: {data[:8]!r}... gave {got:#010x}, want {want:#010x}")


class DecodeError(Exception):
    pass


def read_varint(buf: bytes, pos: int):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def decode_fields(buf: bytes):
    """Generic wire-format decoder: {field_number: [(wire_type, value), ...]}."""
    fields, pos = {}, 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise DecodeError("field number 0")
        if wt == 0:
            val, pos = read_varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise DecodeError("length-delimited field runs past the end")
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise DecodeError("truncated fixed32")
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wt} (field {field})")
        fields.setdefault(field, []).append((wt, val))
    return fields


def one(fields, num, wt):
    vals = fields.get(num, [])
    for w, _ in vals:
        if w != wt:
            raise DecodeError(f"field {num} has wire type {w}, expected {wt}")
    return vals[-1][1] if vals else None


def decode_event(data: bytes) -> dict:
    f = decode_fields(data)
    wall = one(f, 1, 1)
    step = one(f, 2, 0)
    if step is not None and step >= 1 << 63:
        step -= 1 << 64
    ev = {"wall_time": struct.unpack("<d", wall)[0] if wall is not None else 0.0,
          "step": step or 0, "scalars": {}, "session_status": None}
    fv = one(f, 3, 2)
    if fv is not None:
        ev["file_version"] = fv.decode("utf-8")
    summary = one(f, 5, 2)
    if summary is not None:
        for wt, value in decode_fields(summary).get(1, []):
            if wt != 2:
                raise DecodeError("Summary.value is not a message")
            vf = decode_fields(value)
            tag = one(vf, 1, 2)
            simple = one(vf, 2, 5)
            if tag is None or simple is None:
                raise DecodeError("Summary.Value without tag or simple_value")
            ev["scalars"][tag.decode("utf-8")] = struct.unpack("<f", simple)[0]
    slog = one(f, 7, 2)
    if slog is not None:
        ev["session_status"] = one(decode_fields(slog), 1, 0) or 0
    return ev


def read_records(raw: bytes):
    pos, n = 0, 0
    while pos < len(raw):
        if pos + 12 > len(raw):
            raise DecodeError(f"record {n}: truncated header at byte {pos}")
        header = raw[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", raw[pos + 8:pos + 12])
        if masked(crc32c(header)) != len_crc:
            raise DecodeError(f"record {n}: length checksum mismatch at byte {pos}")
        start = pos + 12
        if start + length + 4 > len(raw):
            raise DecodeError(f"record {n}: data runs past the end of the file")
        data = raw[start:start + length]
        (data_crc,) = struct.unpack("<I", raw[start + length:start + length + 4])
        if masked(crc32c(data)) != data_crc:
            raise DecodeError(f"record {n}: data checksum mismatch at byte {start}")
        yield data
        pos = start + length + 4
        n += 1


def read_file(path: str) -> dict:
    with open(path, "rb") as fh:
        raw = fh.read()
    events = [decode_event(d) for d in read_records(raw)]
    if not events or "file_version" not in events[0]:
        raise DecodeError("the first record is not a file_version event")
    return {"records": len(events), "file_version": events[0]["file_version"], "events": events[1:]}


def main(argv) -> int:
    self_test()
    if len(argv) == 2 and argv[1] == "--self-test":
        print("crc32c self-test: ok")
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        out = read_file(argv[1])
    except (DecodeError, UnicodeDecodeError, OSError) as e:
        print(f"tfevents_reader: {argv[1]}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
