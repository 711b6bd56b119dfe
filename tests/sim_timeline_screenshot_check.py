#!/usr/bin/env python3
"""Checks a screenshot of a coord-sim timeline page (tests/sim_timeline_chromium_test.sh).

  sim_timeline_screenshot_check.py SHOT.png WIDTH HEIGHT NAME=#rrggbb:MIN_PIXELS ...
      [--bands NAME=MIN_BANDS ...]

Decodes the PNG with the standard library only (zlib; 8-bit RGB or RGBA, non-interlaced, as
Chromium writes them), checks its size, then that each named colour covers at least MIN_PIXELS
pixels exactly. --bands NAME=N also wants that colour in at least N separate horizontal bands
(runs of rows with the colour, apart by more than a few rows): drawn in several lanes, not in one
spot. Prints what it counted; exits 1 on the first unmet expectation.
"""
import struct
import sys
import zlib

BAND_GAP_ROWS = 4


def decode_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos = 8
    idat = []
    width = height = None
    channels = None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type not in (2, 6) or interlace != 0:
                raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour_type}, "
                                 f"interlace {interlace})")
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filt = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if filt == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif filt == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif filt == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif filt == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif filt != 0:
            raise ValueError(f"{path}: bad filter {filt} on row {y}")
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def count_colour(rows, channels, rgb):
    """Pixels of exactly `rgb`, and the rows they are on."""
    needle = bytes(rgb)
    total = 0
    row_hits = []
    for y, row in enumerate(rows):
        hits = 0
        # Step through the row pixel by pixel only where the colour's first byte occurs.
        i = row.find(needle)
        while i != -1:
            if i % channels == 0:
                hits += 1
                i = row.find(needle, i + channels)
            else:
                i = row.find(needle, i + 1)
        if hits:
            total += hits
            row_hits.append(y)
    return total, row_hits


def bands(row_hits):
    count = 0
    last = None
    for y in row_hits:
        if last is None or y - last > BAND_GAP_ROWS:
            count += 1
        last = y
    return count


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    path, want_w, want_h = argv[1], int(argv[2]), int(argv[3])
    colours = {}
    min_bands = {}
    mode = "colours"
    for arg in argv[4:]:
        if arg == "--bands":
            mode = "bands"
            continue
        name, value = arg.split("=", 1)
        if mode == "colours":
            hex_colour, minimum = value.split(":")
            hex_colour = hex_colour.lstrip("#")
            colours[name] = (tuple(int(hex_colour[i:i + 2], 16) for i in (0, 2, 4)), int(minimum))
        else:
            min_bands[name] = int(value)
    width, height, channels, rows = decode_png(path)
    print(f"screenshot {width}x{height}, {channels} channels")
    if (width, height) != (want_w, want_h):
        print(f"FAIL: screenshot is {width}x{height}, not {want_w}x{want_h}")
        return 1
    failed = False
    for name, (rgb, minimum) in colours.items():
        total, row_hits = count_colour(rows, channels, rgb)
        n_bands = bands(row_hits)
        print(f"{name} #{bytes(rgb).hex()}: {total} pixels in {n_bands} bands (want >= {minimum} pixels"
              f"{', >= %d bands' % min_bands[name] if name in min_bands else ''})")
        if total < minimum or n_bands < min_bands.get(name, 0):
            print(f"FAIL: not enough {name}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
