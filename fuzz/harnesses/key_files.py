"""Key files for `capture --keys` (capture/decrypt.py `parse_keys`, ike/keys.py `parse_tcpdump_secrets`):
Wireshark ikev2_decryption_table lines and tcpdump `ikev2` lines, as `load_keys` reads them (UTF-8)."""

from __future__ import annotations

from vpndoctor.capture.decrypt import parse_keys
from vpndoctor.errors import UsageError
from vpndoctor.ike.keys import SecretsFileError, parse_tcpdump_secrets

OURS = (UsageError, SecretsFileError)


def one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # load_keys refuses it as "not a text file" before parsing
    try:
        table = parse_keys(text)
    except UsageError:
        pass
    else:
        assert len(table) > 0
    try:
        for line in parse_tcpdump_secrets(text):
            line.suite()
            repr(line)
    except SecretsFileError:
        pass
