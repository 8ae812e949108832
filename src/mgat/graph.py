"""The user-item graph as sparse matrices, and the sparse kernels that run on it.

Nodes are users ``0..U-1`` followed by items ``U..U+I-1`` (N = U + I). Every
training interaction gives two directed edges, user -> item and item -> user, so
the adjacency is symmetric. Edges are stored in CSR order by their *target*
node: the neighbours of node ``h`` are ``col[rowptr[h]:rowptr[h + 1]]``.

Two kernels cover everything an attention layer needs without ever building an
(E, D) tensor of per-edge copies:

- ``edge_dot(a, b)``: for every edge (h, t), the inner product ``<a[h], b[t]>``
  (a sampled dense-dense matmul, SDDMM);
- ``spmm(values, x)``: ``out[h] = sum over edges (h, t) of values[e] * x[t]``
  (a sparse-dense matmul, SpMM).

Each is an autograd function whose backward pass is again one SDDMM or SpMM, using
the transpose permutation (edge (h, t) -> edge (t, h)) since the pattern is
symmetric.

On large graphs both kernels on CPU run in column tiles (``ColumnTiles``): once
the (N, D) input outgrows the processor's caches, reading its rows in the random
order of the edges costs several times more per edge, and a kernel restricted
to ``TILE_NODES`` source nodes at a time reads a slice that stays cached.

Shapes: U users, I items, N = U + I nodes, E directed edges (2x interactions),
D a feature width.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.weak import WeakIdKeyDictionary

# CSR tensors built here are valid by construction; skip the per-call warning.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks")

#: Source nodes per column tile of the CPU SpMM and SDDMM. At D = 64 a tile's
#: input slice is 8 MiB. On generated power-law graphs of 10^6 to 10^7 interactions
#: (2 threads), SpMM widths from 16,384 to 32,768 measured within noise of each
#: other and up to twice as fast as 65,536 or more (docs/performance.md). 0 never
#: tiles. TODO: the SDDMM shares this width untested; its inputs are 128-256 wide
#: in the released widths, so a narrower tile may suit it better.
TILE_NODES = 32_768


@dataclass
class Graph:
    """The symmetric user-item graph in CSR form (by target node).

    Attributes:
        num_users: U.
        num_items: I.
        rowptr: (N + 1,) CSR row pointers over target nodes.
        col: (E,) neighbour (source) node of each edge.
        row: (E,) target node of each edge (``rowptr`` expanded).
        transpose: (E,) index of the reverse edge (t, h) of each edge (h, t).
        degree: (N,) number of neighbours of each node, as float.
    """

    num_users: int
    num_items: int
    rowptr: torch.Tensor
    col: torch.Tensor
    row: torch.Tensor
    transpose: torch.Tensor
    degree: torch.Tensor

    @classmethod
    def from_interactions(
        cls, pairs: np.ndarray | torch.Tensor, num_users: int, num_items: int
    ) -> Graph:
        """Build the graph from (E/2, 2) (user, item) index pairs."""
        pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.long).reshape(-1, 2)
        users, items = pairs[:, 0], pairs[:, 1] + num_users
        target = torch.cat([users, items])
        source = torch.cat([items, users])
        num_nodes = num_users + num_items

        order = torch.argsort(target * num_nodes + source)
        row, col = target[order], source[order]
        rowptr = row_pointers(row, num_nodes)
        counts = rowptr.diff()

        # The reverse of edge e = (h, t) is (t, h); both sorted by (target, source).
        keys = row * num_nodes + col
        reverse_keys = col * num_nodes + row
        transpose = torch.searchsorted(keys, reverse_keys)
        return cls(num_users, num_items, rowptr, col, row, transpose, counts.float())

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    @property
    def num_edges(self) -> int:
        return len(self.col)

    def to(self, device: torch.device | str) -> Graph:
        return Graph(
            self.num_users,
            self.num_items,
            *(
                t.to(device)
                for t in (self.rowptr, self.col, self.row, self.transpose, self.degree)
            ),
        )

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """(N, N) sparse CSR matrix with the given (E,) edge values.

        Its indices are int32 below 2^31 edges, made once per graph structure:
        the CPU sparse kernels convert int64 indices to int32 on every call,
        which at 10^6 interactions cost a third of a product's time.
        """
        rowptr, col = _compact_indices(self)
        size = (self.num_nodes, self.num_nodes)
        return torch.sparse_csr_tensor(
            rowptr, col, values, size, check_invariants=False
        )

    def matmul(
        self, values: torch.Tensor, x: torch.Tensor, transposed: bool = False
    ) -> torch.Tensor:
        """``csr(values) @ x``, or with the transposed matrix's values.

        ``transposed`` multiplies by the matrix whose edge (h, t) carries
        ``values`` of edge (t, h). On CPU, graphs of more than two tiles of
        ``TILE_NODES`` nodes multiply tile by tile (``ColumnTiles``).

        Shapes:
            values: (E,); x: (N, D); returns (N, D).
        """
        return self.operator(values, transposed)(x)

    def operator(
        self, values: torch.Tensor, transposed: bool = False
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> matmul(values, x, transposed)``, for several products with the
        same values: the values are laid out (transposed, cut into tiles) once.
        """
        tiles = self.tiles(values.device)
        if tiles is not None:
            return tiles.operator(values, transposed)
        if transposed:
            values = values[self.transpose]
        matrix = self.csr(values)
        return lambda x: product(matrix, x)

    def tiles(self, device: torch.device) -> ColumnTiles | None:
        """The graph's ``ColumnTiles`` where products on ``device`` use them:
        on CPU, for graphs of more than two tiles of ``TILE_NODES`` nodes."""
        if TILE_NODES and device.type == "cpu" and self.num_nodes > 2 * TILE_NODES:
            return ColumnTiles.of(self, TILE_NODES)
        return None

    def interactions(self) -> torch.Tensor:
        """(E/2, 2) (user, item) pairs of the graph, items as item indices."""
        mask = self.row < self.num_users
        return torch.stack([self.row[mask], self.col[mask] - self.num_users], 1)

    def edge_degree_rsqrt(self, end: str) -> torch.Tensor:
        """(E,) ``1 / sqrt(d)`` of each edge's ``target`` or ``neighbour`` node.

        Made once per graph structure: the gather reads the degrees in the
        random order of the neighbours.
        """
        node = {"target": self.row, "neighbour": self.col}[end]
        return _per_graph(
            self, f"degree_rsqrt_{end}", lambda: self.degree[node].rsqrt()
        )


def row_pointers(
    rows: torch.Tensor, num_rows: int, dtype: torch.dtype = torch.long
) -> torch.Tensor:
    """(num_rows + 1,) CSR row pointers of entries sorted by their (R,) rows."""
    pointers = torch.zeros(num_rows + 1, dtype=dtype, device=rows.device)
    pointers[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return pointers


_CACHE: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _cached_on(key: torch.Tensor, name: str, make):
    """``make()``, kept with ``key`` until it is freed or changed in place.

    What is kept must not be changed, and must not hold ``key`` itself (it
    would never be freed).
    """
    store = _CACHE.get(key)
    if store is None or store[0] != key._version:
        store = _CACHE[key] = (key._version, {})
    values = store[1]
    if name not in values:
        values[name] = make()
    return values[name]


def _per_graph(graph: Graph, name: str, make):
    """``make()``, computed once per graph structure.

    Cached on ``graph.col``: the model's buffer outlives the ``Graph`` views of
    it, and is never changed in place.
    """
    return _cached_on(graph.col, name, make)


def _compact_indices(graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
    """``graph``'s CSR ``rowptr`` and ``col``, in int32 where they fit."""
    if graph.num_edges >= 2**31:
        # The graph's own: a cached operator made from them keeps the graph.
        return graph.rowptr, graph.col
    return _per_graph(
        graph, "compact_indices", lambda: (graph.rowptr.int(), graph.col.int())
    )


class ColumnTiles:
    """A graph's CSR matrix cut into blocks of ``width`` source columns.

    Tile k holds the edges whose source lies in ``[k * width, (k + 1) * width)``,
    as a CSR matrix over the rows its edges reach, and the product is the sum of
    the tiles' products with their slices of the input. Each tile writes only
    its rows: in a user-item graph, a tile of users reaches item rows alone and
    a tile of items user rows alone, so a tile's pass over the output does not
    cross all N rows. Edges are laid out tile by tile (in CSR order within a tile),
    so each tile's values are one slice of the laid-out values: edge e goes to
    position ``position[e]``, and position p of the transposed layout holds
    edge ``transposed_order[p]``'s reverse.

    Shapes:
        position: (E,) int64; transposed_order: (E,); a tile reaching R rows:
        an (R + 1,) rowptr and (E_k,) columns local to the tile, all int32
        below 2^31 edges.
    """

    def __init__(self, graph: Graph, width: int) -> None:
        # Users and items tile apart, so that no tile reaches both sides' rows.
        starts = [*range(0, graph.num_users, width)]
        starts += range(graph.num_users, graph.num_nodes, width)
        tile = torch.bucketize(graph.col, torch.tensor(starts[1:]), right=True)
        self.width = width
        self.num_nodes = graph.num_nodes
        # int32 where it fits: half the memory of these per-edge index arrays.
        index = torch.int32 if graph.num_edges < 2**31 else torch.long
        order = torch.argsort(tile, stable=True)
        # Laying values out scatters them (one sequential read): a gather in
        # tile order reads every cache line of the values once per tile
        # (10^7 interactions: 43 against 76 ms). index_copy_ takes int64 only.
        self.position = torch.empty_like(order)
        self.position[order] = torch.arange(len(order), device=order.device)
        self.transposed_order = graph.transpose[order].to(index)
        per_tile = torch.bincount(tile, minlength=len(starts))
        bounds = [0, *torch.cumsum(per_tile, 0).tolist()]
        rows = graph.row[order]
        local = (graph.col[order] - torch.tensor(starts)[tile[order]]).to(index)
        ends = [*starts[1:], graph.num_nodes]
        # (start, stop, first column, columns, first row, rowptr, cols)
        self.tiles = []
        for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
            if start == stop:
                continue
            # Rows are sorted within a tile: its first and last edge bound them.
            first, last = rows[start].item(), rows[stop - 1].item()
            rowptr = row_pointers(rows[start:stop] - first, last - first + 1, index)
            columns = ends[k] - starts[k]
            self.tiles.append(
                (start, stop, starts[k], columns, first, rowptr, local[start:stop])
            )

    @classmethod
    def of(cls, graph: Graph, width: int) -> ColumnTiles:
        """The tiles of ``graph``, built once per graph structure and width."""
        return _per_graph(graph, f"column_tiles_{width}", lambda: cls(graph, width))

    def operator(
        self, values: torch.Tensor, transposed: bool = False
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """As ``Graph.operator``."""
        if transposed:
            # index_select takes the int32 order as it is; indexing with []
            # would first convert it to int64 (10^7 interactions: 116 vs 73 ms).
            values = values.index_select(0, self.transposed_order)
        else:
            values = torch.empty_like(values).index_copy_(0, self.position, values)
        tiles = list(self._matrices(values))

        def multiply(x: torch.Tensor) -> torch.Tensor:
            x = x.contiguous()
            # Zeros, then addmm_ per tile: overwriting each range of rows at its
            # first tile (beta=0) measured slower (3 x 10^6: 76 against 62 ms).
            out = x.new_zeros(self.num_nodes, x.shape[1])
            for column, row, matrix in tiles:
                rows, width = matrix.shape
                out[row : row + rows].addmm_(matrix, x[column : column + width])
            return out

        return multiply

    def _matrices(self, laid_out: torch.Tensor):
        """(first column, first row, CSR matrix) per tile, each matrix's values
        a view of its slice of the (E,) values ``laid_out`` in tile order."""
        for start, stop, column, columns, row, rowptr, cols in self.tiles:
            size = (len(rowptr) - 1, columns)
            matrix = torch.sparse_csr_tensor(
                rowptr, cols, laid_out[start:stop], size, check_invariants=False
            )
            yield column, row, matrix

    def sampled_products(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(E,) ``<a[h], b[t]>`` per edge (h, t) in CSR order, tile by tile.

        Each tile reads only its rows of ``a`` and its columns of ``b``
        (10^7 interactions, 256-d: 2.9 against 3.4 s for the whole matrix).

        Shapes:
            a, b: (N, D); returns (E,).
        """
        laid_out = a.new_zeros(len(self.position))  # see sampled_product
        for column, row, tile in self._matrices(laid_out):
            rows, columns = tile.shape
            torch.sparse.sampled_addmm(
                tile,
                a[row : row + rows],
                b[column : column + columns].t(),
                beta=0.0,
                out=tile,
            )
        return laid_out.index_select(0, self.position)


def product(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix @ x`` for a sparse CSR ``matrix``, written into a fresh buffer.

    ``matrix @ x`` zero-fills its output and then copies it once more before the
    kernel runs: two extra passes over an (N, D) matrix. With ``beta=0``,
    ``addmm_`` ignores what the buffer holds (NaN and inf included, as
    ``torch.addmm`` documents), so the buffer need not be initialised.

    Shapes:
        matrix: (N, N'); x: (N', D); returns (N, D).
    """
    out = x.new_empty(matrix.shape[0], x.shape[1])
    return out.addmm_(matrix, x, beta=0)


def edge_dot(
    graph: Graph,
    a: torch.Tensor,
    b: torch.Tensor,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """(E,) inner products ``<a[h], b[t]>`` over the graph's edges (h, t).

    ``known``: the result, computed before from the same ``a`` and ``b`` (a
    recomputation under activation checkpointing): it is returned as the
    result, with the same backward pass, and the kernel does not run.

    Shapes:
        a, b: (N, D); known: (E,) or None; returns (E,).
    """
    return _EdgeDot.apply(_full_precision(a), _full_precision(b), graph, known)


def spmm(
    graph: Graph,
    values: torch.Tensor,
    x: torch.Tensor,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """``out[h] = sum_t values[(h, t)] * x[t]``: a weighted neighbour sum.

    ``known``: as in ``edge_dot``.

    Shapes:
        values: (E,); x: (N, D); known: (N, D) or None; returns (N, D).
    """
    return _SpMM.apply(_full_precision(values), _full_precision(x), graph, known)


def _full_precision(x: torch.Tensor) -> torch.Tensor:
    """float32 for a half-precision tensor (mixed precision); others as they are.

    The sparse kernels, and the per-edge softmax after them, run in float32:
    a softmax over hundreds of neighbours loses too much in bfloat16.
    """
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def segment_softmax(graph: Graph, logits: torch.Tensor) -> torch.Tensor:
    """Softmax of (E,) edge logits over each target node's incoming edges."""
    # The softmax is shift-invariant per node: subtract each node's maximum,
    # detached, for a stable exp without changing the result or its gradient.
    node_max = torch.full(
        (graph.num_nodes,), float("-inf"), dtype=logits.dtype, device=logits.device
    )
    node_max = node_max.scatter_reduce(0, graph.row, logits.detach(), "amax")
    weights = torch.exp(logits - node_max[graph.row])
    total = torch.zeros_like(node_max).index_add_(0, graph.row, weights)
    return weights / total[graph.row]


def segment_sum(graph: Graph, values: torch.Tensor) -> torch.Tensor:
    """(N,) sum of (E,) edge values over each target node's incoming edges."""
    out = torch.zeros(graph.num_nodes, dtype=values.dtype, device=values.device)
    return out.index_add(0, graph.row, values)


def symmetric_weights(graph: Graph) -> torch.Tensor:
    """(E,) edge values 1 / sqrt(d_h d_t), the entries of D^-1/2 A D^-1/2.

    Made once per graph structure (read-only).
    """
    # Every node that ends an edge has degree >= 1, so the root never divides by 0.
    return _per_graph(
        graph,
        "symmetric_weights",
        lambda: (graph.degree[graph.row] * graph.degree[graph.col]).rsqrt(),
    )


def propagate_mean(graph: Graph, x: torch.Tensor, hops: int) -> torch.Tensor:
    """Mean of ``x, Px, ..., P^hops x`` with P = D^-1/2 A D^-1/2.

    LightGCN's layer-averaged linear propagation (He et al., SIGIR 2020). P is
    symmetric, so the gradient is the same mean of powers of P applied to the
    output's gradient: one autograd node that keeps no (N, D) matrix for the
    backward pass, where a chain of products would keep every hop's input.

    Shapes:
        x: (N, D); returns (N, D).
    """
    x = _full_precision(x)
    # P is the same at every step: laid out once per graph and dtype.
    multiply = _per_graph(
        graph,
        f"symmetric_operator_{x.dtype}",
        lambda: graph.operator(symmetric_weights(graph).to(x.dtype)),
    )

    def mean_of_powers(x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        for _ in range(hops):
            x = multiply(x)
            total += x
        return total.div_(hops + 1)

    # P^T = P: the pattern holds (t, h) for every (h, t), and the weight
    # 1 / sqrt(d_h d_t) is the same both ways, so the map is its own adjoint.
    return _LinearMap.apply(x, mean_of_powers, mean_of_powers)


class _LinearMap(torch.autograd.Function):
    """``apply(x)`` for a fixed linear map, with ``adjoint`` as its backward pass.

    Nothing of size (N, D) is kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, x, apply, adjoint):
        ctx.adjoint = adjoint
        with torch.autocast(x.device.type, enabled=False):
            return apply(x.contiguous())

    @staticmethod
    def backward(ctx, grad):
        return ctx.adjoint(grad.contiguous()), None, None


def sampled_product(graph: Graph, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(E,) ``<a[h], b[t]>`` per edge (h, t) in CSR order, the whole matrix at once.

    Shapes:
        a, b: (N, D); returns (E,).
    """
    # sampled_addmm computes (a @ b.T) only at the pattern's positions. It writes
    # into the pattern itself (out=), since a separate result would first copy
    # the pattern's values and indices. Even with beta=0 the values must be
    # finite (it scales them rather than ignoring them), hence zeros.
    pattern = graph.csr(torch.zeros(graph.num_edges, dtype=a.dtype, device=a.device))
    return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0, out=pattern).values()


def _sddmm(graph: Graph, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    tiles = graph.tiles(a.device)
    if tiles is not None:
        return tiles.sampled_products(a, b)
    return sampled_product(graph, a, b)


class _EdgeDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, graph, known):
        ctx.save_for_backward(a, b)
        ctx.graph = graph
        if known is not None:
            return known.view_as(known)
        with torch.autocast(a.device.type, enabled=False):
            return _sddmm(graph, a.contiguous(), b.contiguous())

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        graph = ctx.graph
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = graph.matmul(grad, b)
        if ctx.needs_input_grad[1]:
            grad_b = graph.matmul(grad, a, transposed=True)
        return grad_a, grad_b, None, None


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, x, graph, known):
        ctx.save_for_backward(values, x)
        ctx.graph = graph
        if known is not None:
            return known.view_as(known)
        with torch.autocast(x.device.type, enabled=False):
            return graph.matmul(values, x)

    @staticmethod
    def backward(ctx, grad):
        values, x = ctx.saved_tensors
        graph = ctx.graph
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_values = _sddmm(graph, grad.contiguous(), x)
        if ctx.needs_input_grad[1]:
            grad_x = graph.matmul(values, grad, transposed=True)
        return grad_values, grad_x, None, None


def index_means(index: torch.Tensor, x: torch.Tensor, offset: int = 0):
    """(n, D) the mean of the rows ``offset + index[r, :]`` of ``x``, per row r.

    The same as ``F.embedding_bag(index, x[offset:], mode="mean")``, computed as
    a fixed sparse (n, N) matrix times ``x``. The matrix and its transpose are
    made once per ``index`` (again if it changes in place), so the backward pass
    is one sparse product; embedding_bag sorts the indices on every backward
    pass, which at 200,000 items of 40 neighbours took 1.6 s a step (2 threads).

    Shapes:
        index: (n, k) row numbers below ``N - offset``; x: (N, D); returns (n, D).
    """
    x = _full_precision(x)
    if index.shape[0] == 0:
        return x.new_zeros(0, x.shape[1])
    forward, backward = _mean_operators(index, offset, x.shape[0], x.dtype)
    return _LinearMap.apply(x, forward, backward)


def _mean_operators(index, offset: int, num_cols: int, dtype: torch.dtype):
    """``index_means``'s (n, N) matrix and its transpose, as products."""

    def make():
        n, k = index.shape
        rows = torch.arange(n, device=index.device).repeat_interleave(k)
        # A row that lists a column twice (two modalities agreeing) counts it twice.
        keys, counts = torch.unique(
            rows * num_cols + index.reshape(-1) + offset, return_counts=True
        )
        rows, cols = keys // num_cols, keys % num_cols
        values = counts.to(dtype) / k
        order = torch.argsort(cols * n + rows)
        forward = _csr(rows, cols, values, (n, num_cols))
        backward = _csr(cols[order], rows[order], values[order], (num_cols, n))
        return (lambda x: product(forward, x)), (lambda g: product(backward, g))

    return _cached_on(index, f"mean_operators_{offset}_{num_cols}_{dtype}", make)


def _csr(rows, cols, values, size) -> torch.Tensor:
    """A CSR matrix from entries sorted by row."""
    index = torch.int32 if len(cols) < 2**31 else torch.long
    rowptr = row_pointers(rows, size[0], index)
    return torch.sparse_csr_tensor(
        rowptr, cols.to(index), values, size, check_invariants=False
    )


def nearest_neighbours(
    queries: torch.Tensor,
    base: torch.Tensor,
    k: int,
    exclude_self: bool = False,
    chunk: int | None = None,
) -> torch.Tensor:
    """Indices of the ``k`` rows of ``base`` most cosine-similar to each query.

    Computed in chunks of queries (by default, as many as keep a chunk's
    similarities near 2^25 values, 128 MiB), so the (n, I) similarity matrix is
    never held. With ``exclude_self`` the queries are ``base`` itself and a row
    is not its own neighbour.

    TODO: the search is exact, O(n I F) time. It takes seconds for 10^4 items.
    With 200,000 generated items and two modalities (benchmarks/scaling.py at
    10^7 interactions, 2 threads), building the default MGAT took about 6
    minutes, and this search is the only part of it that grows as I^2.
    Catalogues of millions need an approximate index.

    Shapes:
        queries: (n, F); base: (I, F); returns (n, k) int64.
    """
    if chunk is None:
        chunk = max(1, min(4096, 2**25 // max(1, len(base))))
    if not 0 < k <= len(base) - int(exclude_self):
        raise ValueError(
            f"nearest_neighbours: k must be in [1, {len(base) - int(exclude_self)}]"
            f", got {k}."
        )
    queries = torch.nn.functional.normalize(queries, dim=-1)
    base_t = torch.nn.functional.normalize(base, dim=-1).t()
    found = []
    for start in range(0, len(queries), chunk):
        similarity = queries[start : start + chunk] @ base_t
        if exclude_self:
            rows = torch.arange(len(similarity), device=similarity.device)
            similarity[rows, rows + start] = -torch.inf
        found.append(similarity.topk(k, dim=1).indices)
    return torch.cat(found) if found else queries.new_zeros((0, k), dtype=torch.long)
