"""Content-addressed archive of raw mail and attachments: files are named by their sha256.

No name taken from a mail ever becomes part of a path here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.errors import StorageError

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Archive:
    """Write-once files under ``root/ab/cd/<sha256>``, durable (fsynced) before ``put`` returns.

    Inside ``deferred_sync()``, ``put`` writes and renames but leaves the fsyncs to the end of the
    block. A batch of files then costs one round of fsyncs, and the caller commits after the block.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._local = threading.local()  # per thread: files and folders waiting for their fsync

    def ensure(self) -> None:
        """Create the archive folder; raise StorageError if it cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-", delete=True)
            probe.close()
        except OSError as exc:
            raise StorageError(f"archive directory {self.root} is not writable: {exc}") from exc

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, *, sync: bool = True) -> str:
        """Store ``data`` once and return its sha256; an existing copy is left as it is.

        With ``sync=False`` the file is written without fsync. ``make_durable`` syncs it later,
        before a commit names it.
        """
        digest = sha256_hex(data)
        target = self.path_for(digest)
        pending: dict[Path, None] | None = getattr(self._local, "pending", None)
        if not sync and pending is None:
            pending = {}  # a throwaway list, so the write below skips its fsyncs
        if target.exists() and target.stat().st_size == len(data):
            if sync:
                # A copy written without sync, or by a run that stopped before its commit.
                self.make_durable(digest)
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    if pending is None:
                        os.fsync(handle.fileno())
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
            if pending is None:
                _fsync_path(target.parent)
            else:
                pending[target] = None
                pending[target.parent] = None
        except OSError as exc:
            raise StorageError(f"cannot write {digest} to the archive: {exc}") from exc
        return digest

    def make_durable(self, digest: str) -> None:
        """fsync the stored file of ``digest`` and its folder, now or at the end of ``deferred_sync()``.

        Raises:
            StorageError: the file is missing or cannot be synced.
        """
        target = self.path_for(digest)
        pending: dict[Path, None] | None = getattr(self._local, "pending", None)
        if pending is not None:
            if not target.exists():
                raise StorageError(f"archive file {digest} is missing")
            pending[target] = None
            pending[target.parent] = None
            return
        try:
            _fsync_path(target)
            _fsync_path(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot fsync {digest} in the archive: {exc}") from exc

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Defer the fsyncs of this thread's puts to the end of the block; nested blocks join the outer one.

        The files and their folders are fsynced when the block ends without an exception. After an
        exception nothing is synced: the caller commits no row that names those files.

        Raises:
            StorageError: an fsync failed; the files may not be durable.
        """
        if getattr(self._local, "pending", None) is not None:
            yield
            return
        pending: dict[Path, None] = {}
        self._local.pending = pending
        try:
            yield
        finally:
            self._local.pending = None
        try:
            for path in pending:
                _fsync_path(path)
        except OSError as exc:
            raise StorageError(f"cannot fsync the archive: {exc}") from exc

    def get(self, digest: str) -> bytes:
        try:
            return self.path_for(digest).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {digest} from the archive: {exc}") from exc

    def relative_key(self, digest: str) -> str:
        return str(self.path_for(digest).relative_to(self.root))


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
