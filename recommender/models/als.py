"""Implicit-feedback ALS (Hu, Koren and Volinsky 2008) in numpy/scipy, float32.

The model minimises, over member factors ``X`` and webtoon factors ``Y``,

    sum_(u,i) c_ui (p_ui - x_u . y_i)^2  +  regularization * (|X|^2 + |Y|^2)

where, for an observed value ``v`` of ``user_items``, ``c_ui = alpha * |v|`` and
``p_ui = 1`` if ``v > 0`` else ``0`` (a negative value says "disliked, this sure"), and
every unobserved pair counts with ``c = 1, p = 0``. These are the semantics of
``implicit`` 0.7.3's CPU ALS (same loss, same initialisation scheme, same conjugate
gradient updates), so the two can be compared on the same matrix.

A half-iteration solves, for every member ``u``, ``(YtY + reg I + Y_u^T (C_u - I) Y_u)
x_u = Y_u^T C_u p_u``, then the same for webtoons. Solvers:

- ``"cg"`` (default, like ``implicit``): ``cg_steps`` conjugate-gradient steps per row,
  warm-started from the previous factors.
- ``"exact"``: each row's Gram matrix is built and solved (batched ``np.linalg.solve``);
  converges in fewer iterations but costs ``O(nnz * factors^2)`` per half-iteration.

**Why it is fast in numpy.** Rows are grouped by history length into chunks padded to
a common length ``L`` (at most 1/8 longer than the real one), and a chunk's item factors
are gathered once into a reusable ``(B, L, factors)`` buffer that stays in cache; every
product ``Y_u v`` / ``Y_u^T w`` is then a batched BLAS matrix-vector call over the
chunk. Rows longer than ``LONG_ROW`` (the most popular webtoons) are not gathered whole:
their ``factors x factors`` system is built slice by slice (BLAS syrk) and the same CG
steps run on it, so the gather buffer stays small.

**Both cores: one forked helper process, not threads.** A half-step is tens of
thousands of short numpy calls, and with two threads the GIL hand-offs cost more than
the second core gives (measured: no gain). So ``fit`` forks ``num_threads - 1`` helper
processes (``_Helpers``) after the chunks are built: they share the chunks
copy-on-write (read only) and the factor arrays through anonymous shared memory, and
each process solves its balanced share of every half-step, one byte over a pipe per
step. Helpers run only numpy and ``os`` calls (safe to fork from a process with other
threads, e.g. an RQ job's heartbeat), report failures over the pipe, are killed on the
parent's exceptions and always reaped. Its BLAS calls are small: processes, not BLAS
threads, use the cores.

**Memory.** The confidence matrix is not copied unless it must be (dtype, duplicates,
``alpha``); the transposed copy lives only while the webtoon chunks are built; chunks
hold int32 ids and float32 confidences (8 bytes per interaction and side, plus the
padding); the factors are drawn in place, last.

**Fold-in.** ``fold_in(history)`` recomputes member factors from a history against the
current webtoon factors with an exact least-squares solve (``YtY + reg I`` is cached
after ``fit``); ``recommend_history`` of one row takes a short path: a float32 Gram
update, a Cholesky solve (LAPACK ``posv``), one gemv into a per-thread score buffer and
a top-n that reads each score once (``top_n_padded``).

**Recommend-all.** ``_ranked`` scores ``RANK_ROWS`` members per gemm into a reused
per-thread block on ``num_threads`` threads (gemm and the top-n's reductions release
the GIL), masks seen webtoons in place and selects with ``top_n_padded``; the
answers are those of the base class, up to the order of exactly tied scores.
"""

from __future__ import annotations

import mmap
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recommender.models.base import (
    BATCH_ROWS,
    NotFittedError,
    Recommender,
    as_csr,
    available_cores,
    mask_seen,
    padded_width,
    top_n,
    top_n_padded,
)

SOLVERS = ("cg", "exact")
# Padded rows x factors gathered per chunk: 8192 x 64 float32 = 2 MB, about one core's
# L2 + a slice of L3; larger chunks mean fewer Python round trips but more cache misses.
CHUNK_ROWS = 8192
# A chunk's padded length is the smallest power of PAD_GROWTH >= each history length.
PAD_GROWTH = 1.125
# Rows padded longer than this are solved through their explicit Gram matrix, built
# from slices of this many entries (_solve_long_row), so no gather buffer grows past
# 16384 x 64 float32 = 4 MB. Lower costs fit time (measured: at 8192, +10% on the
# synthetic 5M bench), higher costs memory.
LONG_ROW = 16384
# implicit's CG stops updating a row once its squared residual is below this.
CG_TOLERANCE = 1e-20


@dataclass(frozen=True)
class _Chunk:
    """Rows of one side with similar history lengths, padded to one length.

    Stored small, since chunks are most of the fit's memory: ids as uint16 when the other
    side has at most 65536 rows, and confidences as uint8 codes into a table of the
    matrix's distinct values when it has few (the usual case: one weight per signal).
    """

    rows: np.ndarray  # (B,) row ids
    columns: np.ndarray  # (B, L) uint16 or int32 other side's ids, 0 where padded
    # (B, L) confidences, or their codes into ``table``; padding holds -1 ("p = 0 with
    # confidence 1"), which is exactly what an unobserved pair contributes, so padded
    # entries change nothing.
    stored: np.ndarray
    table: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.columns.size

    @property
    def confidence(self) -> np.ndarray:
        return self.stored if self.table is None else np.take(self.table, self.stored)

    def weight(self) -> np.ndarray:
        """|c| - 1: the confidence a pair carries beyond the implicit 1 of every pair."""
        if self.table is not None:
            return np.take(np.abs(self.table) - 1, self.stored)  # take: 2x faster than []
        weight = np.abs(self.stored)
        weight -= 1
        return weight

    def target(self) -> np.ndarray:
        """c * p: the confidence where p = 1 (c > 0), else 0."""
        if self.table is not None:
            return np.take(np.maximum(self.table, 0), self.stored)
        return np.maximum(self.stored, 0)


def _confidence_table(values: np.ndarray) -> np.ndarray | None:
    """The distinct confidences of a sample of ``values`` (and the padding's -1), if at
    most 256: chunks then store uint8 codes. A chunk holding a value the sample missed
    keeps its float32 confidences (``_chunks`` checks every code)."""
    sample = values[::max(1, len(values) // 65536)]
    table = np.union1d(sample, np.float32(-1)).astype(np.float32)
    return table if len(table) <= 256 else None


def _chunks(
    matrix: sp.csr_matrix, budget: int, table: np.ndarray | None = None
) -> list[_Chunk]:
    """Group the rows of ``matrix`` into padded chunks of about ``budget`` padded entries.

    All chunks' ids and confidences are views into two arrays in their own shared
    mappings: scattered small arrays would share heap pages with the temporaries that
    the forked helper and its parent allocate, and every such page written after the
    fork is copied (measured: +50 MB on the 5M bench).
    """
    lengths = np.diff(matrix.indptr).astype(np.int64)
    padded = np.maximum(lengths, 1)
    exponent = np.ceil(np.log(padded) / np.log(PAD_GROWTH) - 1e-9)
    caps = np.maximum(np.ceil(PAD_GROWTH**exponent).astype(np.int64), padded)
    order = np.lexsort((np.arange(len(caps)), caps))
    bounds = np.flatnonzero(np.diff(caps[order])) + 1
    layout = []
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        cap = int(caps[group[0]])
        per_chunk = max(1, budget // cap)
        layout.extend((group[start:start + per_chunk], cap)
                      for start in range(0, len(group), per_chunk))
    total = sum(len(rows) * cap for rows, cap in layout)
    all_columns = _shared_array(total, np.uint16 if matrix.shape[1] <= 65536 else np.int32)
    all_stored = _shared_array(total, np.float32 if table is None else np.uint8)
    last = max(matrix.nnz - 1, 0)
    data = matrix.data if matrix.nnz else np.zeros(1, np.float32)
    indices = matrix.indices if matrix.nnz else np.zeros(1, np.int32)
    chunks = []
    offset = 0
    for rows, cap in layout:
        shape = (len(rows), cap)
        size = shape[0] * cap
        offsets = np.arange(cap)
        real = offsets[None, :] < lengths[rows][:, None]
        where = np.minimum(matrix.indptr[rows][:, None] + offsets[None, :], last)
        columns = all_columns[offset:offset + size].reshape(shape)
        columns[...] = np.where(real, indices[where], 0)
        confidence = np.where(real, data[where], -1).astype(np.float32)
        stored = all_stored[offset:offset + size].reshape(shape)
        used = table
        if table is None:
            stored[...] = confidence
        else:
            codes = np.minimum(np.searchsorted(table, confidence), len(table) - 1)
            if np.array_equal(table[codes], confidence):
                stored[...] = codes
            else:  # a value the table's sample missed: this chunk keeps float32
                stored, used = confidence, None
        chunks.append(_Chunk(rows=rows, columns=columns, stored=stored, table=used))
        offset += size
    return chunks


class _Workspace(threading.local):
    """One gather buffer per thread, grown on demand and reused across chunks."""

    buffer: np.ndarray | None = None

    def block(self, rows: int, length: int, factors: int) -> np.ndarray:
        size = rows * length * factors
        if self.buffer is None or self.buffer.size < size:
            self.buffer = np.empty(size, dtype=np.float32)
        return self.buffer[:size].reshape(rows, length, factors)


def _gather(workspace: _Workspace, other: np.ndarray, chunk: _Chunk) -> np.ndarray:
    rows, length = chunk.columns.shape
    block = workspace.block(rows, length, other.shape[1])
    np.take(other, chunk.columns, axis=0, out=block, mode="clip")
    return block


def _solve_cg(
    chunk: _Chunk, block: np.ndarray, factors: np.ndarray, gram: np.ndarray, steps: int
) -> None:
    """``steps`` conjugate-gradient steps for the chunk's rows, warm-started (implicit's)."""
    weight = chunk.weight()

    def product(v: np.ndarray) -> np.ndarray:
        # (gram + Y_u^T (C_u - I) Y_u) v, without forming the per-row Gram matrix.
        along = np.matmul(block, v[:, :, None])[:, :, 0]
        along *= weight
        result = v @ gram
        result += np.matmul(along[:, None, :], block)[:, 0, :]
        return result

    x = factors[chunk.rows]
    # r = Y_u^T C_u p_u - A x in one pass over the block: Y_u^T (target - weight * Y_u x).
    along = np.matmul(block, x[:, :, None])[:, :, 0]
    along *= weight
    np.subtract(chunk.target(), along, out=along)
    r = np.matmul(along[:, None, :], block)[:, 0, :]
    r -= x @ gram
    p = r.copy()
    rs_old = np.einsum("ij,ij->i", r, r)
    active = rs_old >= CG_TOLERANCE
    for _ in range(steps):
        if not active.any():
            break
        ap = product(p)
        curvature = np.einsum("ij,ij->i", p, ap)
        alpha = np.where(active, rs_old / np.where(active, curvature, 1), 0).astype(np.float32)
        x += alpha[:, None] * p
        r -= alpha[:, None] * ap
        rs_new = np.einsum("ij,ij->i", r, r)
        active &= rs_new >= CG_TOLERANCE
        beta = np.where(active, rs_new / np.where(rs_old > 0, rs_old, 1), 0).astype(np.float32)
        p *= beta[:, None]
        p += r
        rs_old = rs_new
    factors[chunk.rows] = x


def _solve_exact(chunk: _Chunk, block: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Least-squares factors of the chunk's rows (per-row Gram matrices, batched solve)."""
    weighted = block * chunk.weight()[:, :, None]
    system = np.matmul(block.transpose(0, 2, 1), weighted)
    system += gram
    rhs = np.matmul(chunk.target()[:, None, :], block)[:, 0, :]
    return np.linalg.solve(system, rhs[:, :, None])[:, :, 0]


def _solve_long_row(
    workspace: _Workspace,
    chunk: _Chunk,
    row: int,
    factors: np.ndarray,
    other: np.ndarray,
    gram: np.ndarray,
    steps: int | None,
) -> None:
    """One long row (a popular webtoon): the same update through its explicit Gram matrix.

    Gathering all of a 70k-member row's factors at once would cost a 20 MB buffer per
    process; its ``factors x factors`` system ``gram + Y_u^T (C_u - I) Y_u`` is built
    instead slice by slice (one gemm each, cache-sized buffer), then the CG steps (or
    the exact solve, ``steps=None``) run on it: the same arithmetic as ``_solve_cg``.
    """
    columns, confidence = chunk.columns[row], chunk.confidence[row]
    system = gram.astype(np.float64)
    rhs = np.zeros(gram.shape[0])
    for start in range(0, len(columns), LONG_ROW):
        part = columns[start:start + LONG_ROW]
        block = workspace.block(1, len(part), other.shape[1])[0]
        np.take(other, part, axis=0, out=block, mode="clip")
        values = confidence[start:start + LONG_ROW]
        rhs += np.maximum(values, 0) @ block
        weight = np.abs(values) - 1
        if weight.min() >= 0:
            # B^T W B as (W^1/2 B)^T (W^1/2 B), which numpy hands to BLAS syrk: half the
            # flops of a general product. The block is scratch: scaled in place.
            block *= np.sqrt(weight)[:, None]
            system += block.T @ block
        else:
            system += (block.T * weight) @ block
    member = chunk.rows[row]
    if steps is None:
        factors[member] = np.linalg.solve(system, rhs)
        return
    x = factors[member].astype(np.float64)
    r = rhs - system @ x
    p = r.copy()
    rs_old = r @ r
    for _ in range(steps):
        if rs_old < CG_TOLERANCE:
            break
        ap = system @ p
        alpha = rs_old / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rs_new = r @ r
        if rs_new < CG_TOLERANCE:
            break
        p = r + (rs_new / rs_old) * p
        rs_old = rs_new
    factors[member] = x


def _shared_array(size: int, dtype: Any) -> np.ndarray:
    """A 1-d array in its own anonymous shared mapping: forked helpers see (and, for
    the factors, write) the same pages, and it shares no page with the heap."""
    buffer = mmap.mmap(-1, max(size * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(buffer, dtype=dtype, count=size)


def _shared_factors(rows: int, factors: int) -> np.ndarray:
    return _shared_array(rows * factors, np.float32).reshape(rows, factors)


def _balanced(chunks: list[_Chunk], parts: int) -> list[list[_Chunk]]:
    """Split chunks into ``parts`` lists of about equal padded size (largest first)."""
    shares: list[list[_Chunk]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for chunk in sorted(chunks, key=lambda chunk: -chunk.size):
        lightest = loads.index(min(loads))
        shares[lightest].append(chunk)
        loads[lightest] += chunk.size
    return shares


class _Helpers:
    """``count - 1`` forked helper processes; with this one, ``count`` solve in parallel.

    Why processes: a half-step is tens of thousands of short numpy calls on cache-sized
    blocks, and with threads the GIL hand-offs between them cost more than the second
    core gives (measured: no gain with two threads). Forked helpers share the chunks
    (copy-on-write, read only) and the factor arrays (shared memory), and take one byte
    per half-step over a pipe: ``run(side)`` makes every process solve its share of that
    side and returns when all are done.

    Fork safety (e.g. inside an RQ job with a heartbeat thread): only the forking thread
    exists in a helper, and whatever locks other threads held stay held there, so a
    helper runs nothing but numpy on inherited arrays and ``os`` calls on its own pipes:
    no logging, no ``sys.stderr``, no sockets, no imports. A failure travels back over
    the reply pipe as text and is raised in the parent; helpers leave with ``os._exit``
    (no atexit handlers, no buffered-stream flushes, no inherited connection closed
    politely). ``close`` always reaps them (no zombies), ``kill`` first ends them at
    once (the parent's exception path); a helper whose parent dies sees its command
    pipe close and exits.
    """

    def __init__(self, count: int, solve: Callable[[int, int], None]) -> None:
        self._solve = solve
        self._pids: list[int] = []
        self._commands: list[int] = []
        self._replies: list[int] = []
        try:
            for worker in range(1, count):
                self._fork(worker)
        except BaseException:
            self.kill()
            self.close()
            raise

    def _fork(self, worker: int) -> None:
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: never returns
            code = 0
            try:
                # The earlier helpers' pipe ends: holding them would keep those helpers
                # from seeing EOF if the parent died.
                for descriptor in (command_write, reply_read, *self._commands,
                                   *self._replies):
                    os.close(descriptor)
                while (side := os.read(command_read, 1)) not in (b"", b"q"):
                    self._solve(int(side), worker)
                    os.write(reply_write, b"d")
            except BaseException as exc:
                code = 1
                try:
                    message = f"{type(exc).__name__}: {exc}"[:4000]
                    os.write(reply_write, b"e" + message.encode("utf-8", "replace"))
                except BaseException:  # the parent is gone, or exc can't be printed
                    pass
            finally:
                os._exit(code)
        os.close(command_read)
        os.close(reply_write)
        self._pids.append(pid)
        self._commands.append(command_write)
        self._replies.append(reply_read)

    def run(self, side: int) -> None:
        for command in self._commands:
            os.write(command, str(side).encode())
        failure: BaseException | None = None
        try:
            self._solve(side, 0)
        except BaseException as exc:  # still collect the helpers' replies first
            failure = exc
        errors = []
        for reply in self._replies:
            answer = os.read(reply, 4096)
            if answer != b"d":
                errors.append(answer[1:].decode("utf-8", "replace") or "it died")
        if failure is not None:
            raise failure
        if errors:
            raise RuntimeError(f"an ALS helper process failed: {errors[0]}")

    def kill(self) -> None:
        """End the helpers now, whatever they are doing (``close`` still reaps them)."""
        for pid in self._pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for command in self._commands:
            try:
                os.write(command, b"q")
            except OSError:  # the helper is already gone
                pass
            os.close(command)
        for pid in self._pids:
            while True:
                try:
                    os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:  # already reaped (e.g. SIGCHLD set to ignore)
                    break
        for reply in self._replies:
            os.close(reply)
        self._pids, self._commands, self._replies = [], [], []


# Members scored per gemm in recommend-all: 256 x 20k float32 = 20 MB per thread, reused.
RANK_ROWS = 256


class AlternatingLeastSquares(Recommender):
    """Implicit-feedback ALS; see the module docstring for the model and the solvers."""

    algorithm: ClassVar[str] = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = None,
        num_threads: int = 0,
        solver: str = "cg",
        cg_steps: int = 3,
    ) -> None:
        if not isinstance(factors, int | np.integer) or factors < 1:
            raise ValueError(f"factors must be a positive integer, not {factors!r}")
        if not regularization >= 0:
            raise ValueError(f"regularization must be >= 0, not {regularization!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, not {alpha!r}")
        if not isinstance(iterations, int | np.integer) or iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, not {iterations!r}")
        if not isinstance(num_threads, int | np.integer) or num_threads < 0:
            raise ValueError(f"num_threads must be an integer >= 0, not {num_threads!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        if not isinstance(cg_steps, int | np.integer) or cg_steps < 1:
            raise ValueError(f"cg_steps must be a positive integer, not {cg_steps!r}")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.random_state = random_state
        self.num_threads = int(num_threads)
        self.solver = solver
        self.cg_steps = int(cg_steps)
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.n_items = 0
        self._gram: np.ndarray | None = None  # YtY + reg I, float64, cached after fit
        self._gram32: np.ndarray | None = None  # the same in float32 (batched fold-ins)
        self._item_norms: np.ndarray | None = None
        self._workspace = _Workspace()
        self._scratch = threading.local()

    # -- fitting ---------------------------------------------------------------------

    def _threads(self) -> int:
        return self.num_threads or available_cores()

    def _confidences(self, user_items: Any) -> sp.csr_matrix:
        matrix = as_csr(user_items, self.n_items or None)
        if not np.isfinite(matrix.data).all():
            raise ValueError("user_items holds NaN or infinite values")
        if self.alpha != 1.0:
            matrix = matrix.copy()
            matrix.data *= np.float32(self.alpha)
        return matrix

    def fit(
        self, user_items: sp.csr_matrix, callback: Callable[[int], None] | None = None
    ) -> AlternatingLeastSquares:
        """Learn member and webtoon factors from a members x webtoons confidence matrix.

        ``callback(iteration)`` is called after each iteration (progress reporting).
        """
        if not sp.issparse(user_items) and np.ndim(user_items) != 2:
            raise ValueError("user_items must be a 2-d members x webtoons matrix")
        self.n_items = 0
        by_member = self._confidences(user_items)
        members, webtoons = by_member.shape
        if members == 0 or webtoons == 0:
            raise ValueError(f"user_items is empty: shape {by_member.shape}")
        processes = min(self._threads(), max(members, webtoons))
        # Order matters for the peak memory: the transposed copy lives only while the
        # webtoon chunks are built, and the factors are allocated last.
        table = _confidence_table(by_member.data)
        by_webtoon = by_member.T.tocsr()
        webtoon_chunks = _chunks(by_webtoon, CHUNK_ROWS, table)
        del by_webtoon
        shares = [_balanced(_chunks(by_member, CHUNK_ROWS, table), processes),
                  _balanced(webtoon_chunks, processes)]
        del webtoon_chunks, by_member
        # implicit's initialisation: members first, then webtoons, uniform [0, 0.01);
        # drawn in place, with no full-size temporaries.
        rng = np.random.default_rng(self.random_state)
        side_factors = [_shared_factors(members, self.factors),
                        _shared_factors(webtoons, self.factors)]
        for factors in side_factors:
            rng.random(out=factors, dtype=np.float32)
            factors *= np.float32(0.01)

        def solve(side: int, worker: int) -> None:
            self._half_step(shares[side][worker], side_factors[side], side_factors[1 - side])

        helpers = _Helpers(processes, solve) if processes > 1 and hasattr(os, "fork") else None
        try:
            for iteration in range(self.iterations):
                for side in (0, 1):
                    if helpers is None:
                        for share in shares[side]:
                            self._half_step(share, side_factors[side], side_factors[1 - side])
                    else:
                        helpers.run(side)
                if callback is not None:
                    callback(iteration)
        except BaseException:
            if helpers is not None:
                helpers.kill()
            raise
        finally:
            if helpers is not None:
                helpers.close()
        # Kept in their shared pages (no copy): a copy would add to the peak memory.
        self._set_factors(side_factors[0], side_factors[1])
        return self

    def _half_step(self, chunks: list[_Chunk], factors: np.ndarray, other: np.ndarray) -> None:
        """Solve ``factors`` rows of ``chunks`` against the fixed ``other`` side."""
        gram = other.T @ other
        gram += np.float32(self.regularization) * np.eye(self.factors, dtype=np.float32)
        for chunk in chunks:
            if chunk.columns.shape[1] > LONG_ROW:
                for row in range(len(chunk.rows)):
                    _solve_long_row(self._workspace, chunk, row, factors, other, gram,
                                    None if self.solver == "exact" else self.cg_steps)
                continue
            block = _gather(self._workspace, other, chunk)
            if self.solver == "cg":
                _solve_cg(chunk, block, factors, gram, self.cg_steps)
            else:
                factors[chunk.rows] = _solve_exact(chunk, block, gram)

    def _set_factors(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.n_items = self.item_factors.shape[0]
        # In float64 for the fold-ins' accuracy, by slices: no full float64 copy.
        gram = np.zeros((self.factors, self.factors))
        for start in range(0, self.n_items, 4096):
            rows = self.item_factors[start:start + 4096].astype(np.float64)
            gram += rows.T @ rows
        gram[np.diag_indices_from(gram)] += self.regularization
        self._gram = gram
        self._gram32 = gram.astype(np.float32)
        self._scratch = threading.local()
        self._item_norms = None

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.user_factors is None or self.item_factors is None or self._gram is None:
            raise NotFittedError("AlternatingLeastSquares is not fitted")
        return self.user_factors, self.item_factors

    # -- fold-in ---------------------------------------------------------------------

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Member factors (rows x factors) recomputed from ``history`` rows, no retrain.

        Exact least squares against the current webtoon factors: the factors ``fit``
        would give a member with this history if the webtoon factors stayed fixed.
        """
        _, item_factors = self._fitted()
        history = self._confidences(history)
        if history.shape[0] == 1:
            return self._fold_in_row(history.indices, history.data)[None, :]
        result = np.empty((history.shape[0], self.factors), dtype=np.float32)
        for chunk in _chunks(history, CHUNK_ROWS):
            block = _gather(self._workspace, item_factors, chunk)
            result[chunk.rows] = _solve_exact(chunk, block, self._gram32)
        return result

    def _fold_in_row(self, columns: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        _, item_factors = self._fitted()
        rows = item_factors[columns]
        weighted = rows.T * (np.abs(confidence) - 1)
        # The small products in float32; the 64 x 64 solve in float64 against the cached
        # float64 Gram matrix, as accurate as the batched path for the same cost.
        system = self._gram + weighted @ rows
        rhs = (np.maximum(confidence, 0) @ rows).astype(np.float64)
        # Cholesky (LAPACK posv, little call overhead): the system is positive definite
        # whenever regularization > 0; a general solve otherwise.
        _, member, info = lapack.dposv(system, rhs, overwrite_a=True)
        if info != 0:
            member = np.linalg.solve(self._gram + weighted @ rows, rhs)
        return member.astype(np.float32)

    # -- scoring ---------------------------------------------------------------------

    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        user_factors, item_factors = self._fitted()
        if user_ids is None:
            members = self.fold_in(user_items)
        else:
            members = user_factors[self._checked_ids(user_ids)]
        return members @ item_factors.T

    def _checked_ids(self, user_ids: np.ndarray) -> np.ndarray:
        user_factors, _ = self._fitted()
        if len(user_ids) and (user_ids.min() < 0 or user_ids.max() >= len(user_factors)):
            raise ValueError(
                f"user ids must be in [0, {len(user_factors)}), got "
                f"[{user_ids.min()}, {user_ids.max()}]"
            )
        return user_ids

    def recommend_history(
        self,
        history: sp.csr_matrix,
        n: int = 10,
        filter_seen: bool = True,
        batch_rows: int = BATCH_ROWS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` from histories alone; one row takes a short, allocation-light path."""
        self._fitted()
        history = as_csr(history, self.n_items)
        if history.shape[0] != 1:
            return super().recommend_history(history, n, filter_seen, batch_rows)
        history = self._confidences(history)
        member = self._fold_in_row(history.indices, history.data)
        padded = self._score_rows(1)
        np.matmul(self.item_factors, member, out=padded[0, :self.n_items])
        if filter_seen:
            padded[0, history.indices] = -np.inf
        return top_n_padded(padded, min(n, self.n_items))

    def _score_rows(self, rows: int) -> np.ndarray:
        """This thread's reusable (rows x padded width) score block, padding at -inf."""
        buffer = getattr(self._scratch, "scores", None)
        if buffer is None or buffer.shape[0] < rows:
            buffer = np.full((rows, padded_width(self.n_items)), -np.inf, dtype=np.float32)
            self._scratch.scores = buffer
        return buffer[:rows]

    def _ranked(
        self,
        user_ids: np.ndarray | None,
        user_items: sp.csr_matrix,
        n: int,
        filter_seen: bool,
        batch_rows: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        # The base class's loop, with each thread scoring RANK_ROWS members per gemm into
        # its own reused block (BLAS and numpy release the GIL there), seen webtoons
        # masked in place, and a top-n that reads each score once (top_n_padded).
        user_factors, item_factors = self._fitted()
        if user_ids is not None:
            self._checked_ids(user_ids)
        rows = user_items.shape[0]
        step = max(1, min(batch_rows, RANK_ROWS))
        threads = min(self._threads(), -(-rows // step))
        n = min(n, self.n_items)
        ids = np.empty((rows, n), dtype=np.int64)
        scores = np.empty((rows, n), dtype=np.float32)

        def rank(start: int) -> None:
            stop = min(rows, start + step)
            batch = user_items[start:stop]
            if user_ids is None:
                members = self.fold_in(batch)
            else:
                members = user_factors[user_ids[start:stop]]
            block = self._score_rows(stop - start)
            np.matmul(members, item_factors.T, out=block[:, :self.n_items])
            if filter_seen:
                mask_seen(block, batch)
            ids[start:stop], scores[start:stop] = top_n_padded(block, n)

        if threads == 1:
            for start in range(0, rows, step):
                rank(start)
        else:
            with ThreadPoolExecutor(threads) as pool:
                for _ in pool.map(rank, range(0, rows, step)):
                    pass
        return ids, scores

    def similar_items(self, item_ids: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Per webtoon, the ``n`` webtoons with the most similar factors (cosine), itself
        excluded."""
        _, item_factors = self._fitted()
        item_ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        if len(item_ids) and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise ValueError(f"item ids must be in [0, {self.n_items})")
        if self._item_norms is None:
            norms = np.linalg.norm(item_factors, axis=1)
            self._item_norms = np.where(norms > 0, norms, 1).astype(np.float32)
        unit = item_factors / self._item_norms[:, None]
        scores = unit[item_ids] @ unit.T
        scores[np.arange(len(item_ids)), item_ids] = -np.inf
        return top_n(scores, n)

    # -- persistence -----------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
            "num_threads": self.num_threads,
            "solver": self.solver,
            "cg_steps": self.cg_steps,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        user_factors, item_factors = self._fitted()
        return {"user_factors": user_factors, "item_factors": item_factors}

    @classmethod
    def from_arrays(
        cls, params: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> AlternatingLeastSquares:
        model = cls(**params)
        try:
            user_factors, item_factors = arrays["user_factors"], arrays["item_factors"]
        except KeyError as exc:
            raise ValueError(f"ALS arrays lack {exc.args[0]!r}") from None
        for name, array in (("user_factors", user_factors), ("item_factors", item_factors)):
            if np.ndim(array) != 2 or np.shape(array)[1] != model.factors:
                raise ValueError(
                    f"{name} has shape {np.shape(array)}, expected (n, {model.factors})"
                )
        model._set_factors(user_factors, item_factors)
        return model
