"""Watch the lab responders' half-open IKE SAs through vici while something runs.

strongSwan counts an SA as half-open from the moment it handles an IKE_SA_INIT until the SA is
established or gone; `swanctl --stats` reports the count. This watcher asks both backends about every
millisecond (strongSwan's own `vici` Python binding, one session per charon) and keeps the peak of their
sum: in the lab every half-open SA is the client's, so the peak is what the gateway counted from us.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

BACKENDS = ("vpn1", "vpn2")


class HalfOpenWatch:
    def __init__(
        self, workdir: Path, backends: tuple[str, ...] = BACKENDS, interval_s: float = 0.001
    ) -> None:
        import vici  # type: ignore[import-untyped]  # the lab's extra dependency: only lab tests and the benchmark need it

        self._sessions = []
        self._sockets = []
        for b in backends:
            path = workdir / b / "charon.vici"
            if not path.exists():
                continue
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5.0)
            sock.connect(str(path))
            self._sockets.append(sock)
            self._sessions.append(vici.Session(sock))
        self.interval_s = interval_s
        self.before = self.count()
        self.peak = self.before
        self.after = self.before
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        return sum(int(s.stats()["ikesas"]["half-open"]) for s in self._sessions)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            self.polls += 1
            time.sleep(self.interval_s)

    def __enter__(self) -> HalfOpenWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.after = self.count()
        for sock in self._sockets:
            sock.close()
