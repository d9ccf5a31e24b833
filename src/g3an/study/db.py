"""The answers of a study: SQLite in WAL mode, every answer committed before the server replies.

Tables::

    raters(id TEXT PRIMARY KEY, created TEXT, user_agent TEXT)
    answers(id INTEGER PRIMARY KEY, rater TEXT REFERENCES raters, pair TEXT, choice TEXT ('left'|'right'),
            created TEXT, elapsed_ms INTEGER, UNIQUE(rater, pair))

``synchronous=FULL`` makes a committed answer survive a crash of the process or of the machine; the
``UNIQUE(rater, pair)`` constraint makes a second answer of a rater to the same pair impossible, whatever
the clients send and however many server threads run.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DB_FILE", "Answer", "StudyDB"]

DB_FILE = "answers.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    rater TEXT NOT NULL REFERENCES raters(id),
    pair TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
    created TEXT NOT NULL,
    elapsed_ms INTEGER,
    UNIQUE (rater, pair)
);
CREATE INDEX IF NOT EXISTS answers_rater ON answers (rater);
"""


@dataclass(frozen=True)
class Answer:
    """One stored answer."""

    rater: str
    pair: str
    choice: str
    created: str
    elapsed_ms: int | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class StudyDB:
    """The answers database of one study; safe to share between the threads of a server.

    Args:
        path: the SQLite file (created with its tables when missing).
        readonly: open for reading only (``g3an study results``).
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if readonly:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def add_rater(self, rater: str, user_agent: str = "") -> None:
        """Register a new rater id."""
        with self._lock:
            self._conn.execute("INSERT INTO raters (id, created, user_agent) VALUES (?, ?, ?)",
                               (rater, _now(), user_agent[:200]))  # fmt: skip

    def has_rater(self, rater: str) -> bool:
        """Whether ``rater`` was registered."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM raters WHERE id = ?", (rater,)).fetchone() is not None

    def add_answer(self, rater: str, pair: str, choice: str, elapsed_ms: int | None = None) -> bool:
        """Store (and commit) one answer.

        Returns:
            ``True`` when stored, ``False`` when this rater had already answered this pair (nothing changes).
        """
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO answers (rater, pair, choice, created, elapsed_ms) VALUES (?, ?, ?, ?, ?)",
                    (rater, pair, choice, _now(), elapsed_ms),
                )
            except sqlite3.IntegrityError:
                return False
            return True

    def answered(self, rater: str) -> set[str]:
        """The pair ids ``rater`` has answered."""
        with self._lock:
            return {row[0] for row in self._conn.execute("SELECT pair FROM answers WHERE rater = ?", (rater,))}

    def answers(self) -> list[Answer]:
        """Every answer, in the order stored."""
        with self._lock:
            rows = self._conn.execute("SELECT rater, pair, choice, created, elapsed_ms FROM answers ORDER BY id")
            return [Answer(*row) for row in rows]

    def num_raters(self) -> int:
        """Registered raters (with or without answers)."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0])
