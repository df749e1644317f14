"""The background writer of `transfer`: disk errors surface, nothing deadlocks, order is kept."""

import io

import pytest

from sam3ops import transfer


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


class _FullDisk(io.BytesIO):
    def write(self, data):
        if self.tell() >= 3:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_writer_keeps_order_and_counts():
    handle, bar = io.BytesIO(), _Bar()
    writer = transfer._Writer(handle, bar)
    for i in range(100):
        writer.put(bytes([i]))
    writer.close()
    assert handle.getvalue() == bytes(range(100)) and bar.n == 100


def test_writer_disk_error_reaches_the_reader_without_deadlock():
    writer = transfer._Writer(_FullDisk(), _Bar())
    with pytest.raises(OSError) as info:
        for _ in range(10 * transfer.QUEUE_CHUNKS):  # far more than the queue holds
            writer.put(b"x")
        writer.close()
    assert info.value.errno == 28


def test_part_paths_are_per_version(tmp_path):
    assert transfer.part_path(tmp_path, "sub/model.safetensors", '"abc/123"').name == "model.safetensors.abc123.part"
    assert transfer.partial_bytes(tmp_path, "sub/model.safetensors") == 0
