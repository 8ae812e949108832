"""The CPU sparse kernels with and without column tiles, by graph size.

Usage: python benchmarks/sparse_tiles.py [--sizes 1e5 1e6 1e7] [--width 64]
       [--tile-nodes 32768] [--repeats 5] [--kernel spmm|sddmm]

For each size it generates the power-law graph of ``benchmarks/scaling.py`` and
times, in one process, a kernel over the whole CSR matrix and the same kernel
tile by tile (``mgat.graph.ColumnTiles``). ``spmm``: the product with an
(N, width) input, laying the edge values out into tiles included, as a training
step does for values that change. ``sddmm``: the (E,) inner products of two
(N, width) inputs over the edges, in CSR order. Prints the best of ``--repeats``
runs of each, per edge and as a ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mgat.graph import (  # noqa: E402
    TILE_NODES,
    ColumnTiles,
    Graph,
    product,
    sampled_product,
)
from scaling import power_law_graph  # noqa: E402


def best_seconds(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        run()
        times.append(time.perf_counter() - tick)
    return min(times)


def measure(size: int, width: int, tile_nodes: int, repeats: int, kernel: str):
    pairs, num_users, num_items = power_law_graph(size)
    graph = Graph.from_interactions(pairs, num_users, num_items)
    x = torch.randn(graph.num_nodes, width)
    tiles = ColumnTiles(graph, tile_nodes)
    if kernel == "spmm":
        values = torch.rand(graph.num_edges)
        whole = best_seconds(lambda: product(graph.csr(values), x), repeats)
        tiled = best_seconds(lambda: tiles.operator(values)(x), repeats)
    else:
        y = torch.randn(graph.num_nodes, width)
        whole = best_seconds(lambda: sampled_product(graph, x, y), repeats)
        tiled = best_seconds(lambda: tiles.sampled_products(x, y), repeats)
    return {"nodes": graph.num_nodes, "edges": graph.num_edges, "whole": whole,
            "tiled": tiled, "tiles": len(tiles.tiles)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--tile-nodes", type=int, default=TILE_NODES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kernel", choices=("spmm", "sddmm"), default="spmm")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    header = ("nodes", "edges", "tiles", "whole ms", "tiled ms", "tiled ns/edge")
    header += ("speed-up",)
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for size in args.sizes:
        row = measure(int(size), args.width, args.tile_nodes, args.repeats, args.kernel)
        per_edge = row["tiled"] / row["edges"] * 1e9
        print(
            f"| {row['nodes']:,} | {row['edges']:,} | {row['tiles']} | "
            f"{row['whole'] * 1e3:.1f} | {row['tiled'] * 1e3:.1f} | "
            f"{per_edge:.1f} | {row['whole'] / row['tiled']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
