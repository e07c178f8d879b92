"""Gzip compression that keeps up with pg_dump on two cores.

Each chunk becomes its own gzip member (a valid .gz: gunzip, zcat and psql pipelines read
concatenated members). ISA-L level 2 sizes within a few percent of gzip -6 at ~10x the speed,
and it releases the GIL, so compression overlaps with reading and hashing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from isal import igzip, isal_zlib

DEFAULT_LEVEL = 2  # ISA-L levels are 0-3
# isal's stub declares `error` as an instance; at run time it is the exception class.
_GZIP_ERROR = cast(type[Exception], isal_zlib.error)
WORKERS = 2


def gzip_chunks(chunks: Iterable[bytes], level: int = DEFAULT_LEVEL) -> Iterator[bytes]:
    """Compress chunks in parallel, yielding gzip members in input order (bounded in flight)."""
    if not 0 <= level <= 3:
        raise ValueError(f"compression level must be 0-3 (ISA-L), got {level}")
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="gzip") as pool:
        for chunk in chunks:
            pending.append(pool.submit(igzip.compress, chunk, level))
            if len(pending) > WORKERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def gunzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a stream of concatenated gzip members; raises ValueError on corrupt input."""
    decomp = isal_zlib.decompressobj(wbits=31)
    mid_member = False
    for data in chunks:
        while data:
            mid_member = True
            try:
                out = decomp.decompress(data)
            except _GZIP_ERROR as exc:
                raise ValueError(f"corrupt gzip data: {exc}") from None
            if out:
                yield out
            if not decomp.eof:
                break
            data = decomp.unused_data
            decomp = isal_zlib.decompressobj(wbits=31)
            mid_member = False
    if mid_member:
        raise ValueError("gzip stream is truncated")
