# Types of the C record walk (_scan.c); see fastpath.py for what each does.
from array import array
from mmap import mmap
from typing import Any

Buffer = bytes | bytearray | memoryview | mmap

class Tables:
    def __init__(self, esp: dict[Any, int], tcp: dict[Any, Any], worker: bool = False) -> None: ...
    def pcap_records(
        self,
        buf: Buffer,
        pos: int,
        end: int,
        l2: int,
        ethertype_at: int,
        snap: int,
        scale: float,
        horizon: float | None,
        /,
    ) -> int: ...
    def pcap_deferred(
        self,
        buf: Buffer,
        offsets: array[int],
        gaps: array[int],
        index: int,
        l2: int,
        ethertype_at: int,
        snap: int,
        scale: float,
        horizon: float | None,
        /,
    ) -> int: ...
    def pcapng_blocks(
        self,
        buf: Buffer,
        pos: int,
        end: int,
        ethernet: list[bool],
        clocks: list[tuple[float, int]],
        horizon: float | None,
        max_packet: int,
        max_block: int,
        /,
    ) -> int: ...
    def scan_deferring(
        self,
        buf: Buffer,
        off: int,
        end: int,
        l2: int,
        ethertype_at: int,
        snap: int,
        units: int,
        max_packet: int,
        max_keys: int,
        look_bytes: int,
        deferred: array[int],
        gaps: array[int],
        hi: int,
        /,
    ) -> tuple[int, int, int, int, int, int, int, int]: ...
    def flush(self) -> tuple[int, int, int, int, int, int]: ...
