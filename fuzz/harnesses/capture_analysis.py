"""`vpndoctor capture` end to end (capture/analysis.py `analyse`) on a capture stream: the reader, the C fast
path, IP reassembly, TCP/TLS flows, IKE conversations and their findings, decryption with tcpdump's ikev2pI2
keys, and the JSON report."""

from __future__ import annotations

import io

from vpndoctor.capture.analysis import analyse
from vpndoctor.capture.decrypt import Decryptor, parse_keys  # noqa: F401 - imported lazily by analyse
from vpndoctor.capture.reader import CaptureError
from vpndoctor.cli.output import to_json

OURS = (CaptureError,)
MAX_LEN = 32768

KEYS = parse_keys(
    "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x4ea8e662b07cdd430f6944c6723e4b82d5722418"
    " aes128:0x3f44bf47cafd8150591deb088199fcbf\n"
    "ikev2 R 0x0001020304050607 0xc02e7a3031a03188 sha1:0x515b0bd22e6d76b34fdb760aa7bfad80b109b75d"
    " aes128:0xbedb67ec7dc3d00cccac42e70cd63bde\n"
)


def one_input(data: bytes) -> None:
    try:
        report = analyse(io.BytesIO(data), name="fuzz.pcap", keys=KEYS)
    except CaptureError:
        return
    to_json(report)
