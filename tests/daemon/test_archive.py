"""The content-addressed archive: files named by sha256, fsynced before put returns or at the end
of a deferred_sync block, which is what a batch commit relies on."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from daemon.archive import Archive, sha256_hex
from daemon.errors import StorageError


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the inode of every file or folder fsynced (the real fsync still runs)."""
    inodes: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        inodes.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return inodes


def test_put_syncs_file_and_folder(tmp_path: Path, synced: list[int]) -> None:
    archive = Archive(tmp_path)
    data = "政务信息 raw mail".encode()
    digest = archive.put(data)

    path = archive.path_for(digest)
    assert digest == sha256_hex(data)
    assert path.read_bytes() == data
    assert archive.get(digest) == data
    assert synced == [path.stat().st_ino, path.parent.stat().st_ino]


def test_deferred_sync_once_at_end(tmp_path: Path, synced: list[int]) -> None:
    archive = Archive(tmp_path)
    with archive.deferred_sync():
        digests = [archive.put(f"第{n}封".encode()) for n in range(5)]
        with archive.deferred_sync():  # a nested block joins the outer one
            digests.append(archive.put(b"nested"))
        assert synced == []

    expected = {archive.path_for(d).stat().st_ino for d in digests} | {
        archive.path_for(d).parent.stat().st_ino for d in digests
    }
    assert set(synced) == expected
    assert len(synced) == len(expected)


def test_unsynced_put_made_durable_later(tmp_path: Path, synced: list[int]) -> None:
    archive = Archive(tmp_path)
    digest = archive.put(b"written first, synced at the commit", sync=False)
    assert synced == []

    with archive.deferred_sync():
        archive.make_durable(digest)
    path = archive.path_for(digest)
    assert sorted(synced) == sorted([path.stat().st_ino, path.parent.stat().st_ino])


def test_failed_block_syncs_nothing(tmp_path: Path, synced: list[int]) -> None:
    archive = Archive(tmp_path)
    with pytest.raises(RuntimeError), archive.deferred_sync():
        archive.put(b"never committed")
        raise RuntimeError("the batch failed")
    assert synced == []

    archive.put(b"after the failed block")
    assert len(synced) == 2


def test_other_threads_not_deferred(tmp_path: Path, synced: list[int]) -> None:
    archive = Archive(tmp_path)
    with archive.deferred_sync():
        worker = threading.Thread(target=archive.put, args=(b"from the outbox thread",))
        worker.start()
        worker.join()
        assert len(synced) == 2  # synced by its own put, not held for this block


def test_missing_file_durable_error(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    with pytest.raises(StorageError, match="missing"), archive.deferred_sync():
        archive.make_durable("0" * 64)
