"""The pcap/pcapng reader (capture/reader.py `CaptureReader`) on a stream of the fuzzer's bytes: any
byte order, link type, timestamp resolution, block, option or gzip wrapping; every frame read, then the
warnings."""

from __future__ import annotations

import io

from vpndoctor.capture.reader import CaptureError, CaptureReader

OURS = (CaptureError,)
MAX_LEN = 32768


def one_input(data: bytes) -> None:
    reader = CaptureReader(io.BytesIO(data))
    try:
        for frame in reader.frames():
            assert len(frame.data) <= 256 * 1024
    except CaptureError:
        pass
    _ = reader.warnings, reader.format
