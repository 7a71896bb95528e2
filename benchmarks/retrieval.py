"""Retrieval: index build time, query latency and reopen time over a synthetic corpus.

The corpus is made with a fixed seed: pseudo-words drawn from a Zipf-like distribution
(a few very common, a long tail of rare ones, as in real text), written as .txt files
whose paragraphs are one chunk each. Queries are 2-5 words taken from random chunks, so
every query has matches. Figures:

- build: a new Retrieval over the files (read, parse, chunk, tokenise, BM25, save)
- index only: the BM25 matrix alone (bm25s) from the cached tokens
- query: ``Retrieval.search`` (tokenise the query, score, top-k), p50/p90/p99
- reopen: a new Retrieval over the same unchanged files (stat, load the saved index)
- one file changed: reopen after one file was edited (parse it, rebuild the matrix)
- many files: a new Retrieval over ``--many-files`` small files (one paragraph each)
  against reopening it unchanged (the goal: reopen at least 5x faster than build)

    python benchmarks/retrieval.py [--chunks 10000] [--files 200] [--queries 500]
        [--many-files 20000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path

from qwen_agent.tools.retrieval import Retrieval
from qwen_agent.tools.retrieval.index import BM25_PARAMS

SYLLABLES = (
    "ka ri to na mi lo se ta po ver an del mon tra sil ben cor dun fal gri hel ist "
    "jor kel lum mar nor ost pel qua ran sto tul und val wes xan yor zel"
).split()


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def make_corpus(folder: Path, chunks: int, files: int, seed: int) -> list[str]:
    """Write ``files`` text files holding ``chunks`` paragraphs; returns the paragraphs."""
    rng = random.Random(seed)
    vocab = make_vocabulary(rng, 30_000)
    cum = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))  # Zipf
    paragraphs = []
    for _ in range(chunks):
        words: list[str] = []
        length = 0
        while length < 800:  # and under 1000 characters: one paragraph is one chunk
            sentence = rng.choices(vocab, cum_weights=cum, k=rng.randint(8, 16))
            words += [sentence[0].capitalize(), *sentence[1:-1], sentence[-1] + "."]
            length += sum(len(w) + 1 for w in sentence)
        paragraphs.append(" ".join(words))
    per_file = -(-chunks // files)
    for i in range(files):
        part = paragraphs[i * per_file : (i + 1) * per_file]
        if part:
            (folder / f"doc{i:04d}.txt").write_text("\n\n".join(part) + "\n", encoding="utf-8")
    return paragraphs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--many-files", type=int, default=20_000, help="0: leave that figure out")
    args = ap.parse_args()
    if not (0 < args.files <= args.chunks <= 200_000 and 0 < args.queries <= 100_000):
        ap.error("need 0 < files <= chunks <= 200000 and 0 < queries <= 100000")
    if not 0 <= args.many_files <= 200_000:
        ap.error("need 0 <= many-files <= 200000")

    with tempfile.TemporaryDirectory(prefix="qwen-agent-rag-bench-") as tmp:
        docs, index_dir = Path(tmp, "docs"), Path(tmp, "index")
        docs.mkdir()
        t0 = time.perf_counter()
        paragraphs = make_corpus(docs, args.chunks, args.files, args.seed)
        made = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in docs.iterdir()) / 2**20

        t0 = time.perf_counter()
        rag = Retrieval(files=[str(docs)], index_dir=str(index_dir), top_k=args.top_k)
        build = time.perf_counter() - t0
        n_chunks = rag.report.chunks

        import bm25s

        tokens = [rag.tokenizer(c.text) for c in rag.index.chunks]
        t0 = time.perf_counter()
        bm25s.BM25(**BM25_PARAMS).index(tokens, show_progress=False)
        index_only = time.perf_counter() - t0

        rng = random.Random(args.seed + 1)
        queries = []
        for _ in range(args.queries):
            words = rng.choice(paragraphs).rstrip(".").split()
            start = rng.randrange(len(words) - 5)
            queries.append(" ".join(words[start : start + rng.randint(2, 5)]))
        for q in queries[:20]:  # warm up
            rag.search(q)
        latencies, empty = [], 0
        for q in queries:
            t0 = time.perf_counter()
            hits = rag.search(q)
            latencies.append((time.perf_counter() - t0) * 1e3)
            empty += not hits

        t0 = time.perf_counter()
        again = Retrieval(files=[str(docs)], index_dir=str(index_dir), top_k=args.top_k)
        reopen = time.perf_counter() - t0
        if again.report.parsed or again.report.rebuilt:
            raise SystemExit("reopen parsed files again: the persistence is broken")

        first = sorted(docs.iterdir())[0]
        first.write_text(first.read_text(encoding="utf-8") + "\nA new closing line.\n")
        t0 = time.perf_counter()
        changed = Retrieval(files=[str(docs)], index_dir=str(index_dir), top_k=args.top_k)
        incremental = time.perf_counter() - t0
        parsed = len(changed.report.parsed)

    print(
        f"corpus: {n_chunks} chunks in {args.files} files ({size:.1f} MB), seed {args.seed}, "
        f"made in {made:.1f} s"
    )
    print(f"build (parse+chunk+tokenise+index+save): {build:8.2f} s")
    print(f"index only (bm25s matrix):               {index_only:8.2f} s")
    print(
        f"query latency over {len(queries)} queries, top_k={args.top_k}: "
        f"p50 {statistics.median(latencies):.2f} ms, p90 {percentile(latencies, 90):.2f} ms, "
        f"p99 {percentile(latencies, 99):.2f} ms  (goal: p50 < 5 ms)"
    )
    if empty:
        print(f"  ({empty} queries found nothing)")
    print(f"reopen (unchanged, nothing parsed):      {reopen:8.2f} s")
    print(f"reopen with one file changed ({parsed} parsed): {incremental:8.2f} s")
    if args.many_files:
        many_build, many_reopen = many_files(args.many_files, args.seed)
        print(
            f"{args.many_files} files: build {many_build:.2f} s, reopen unchanged "
            f"{many_reopen:.2f} s ({many_build / many_reopen:.1f}x faster; goal >= 5x)"
        )


def many_files(count: int, seed: int) -> tuple[float, float]:
    """Seconds to build an index of ``count`` one-paragraph files, and to reopen it."""
    rng = random.Random(seed + 2)
    vocab = make_vocabulary(rng, 5_000)
    with tempfile.TemporaryDirectory(prefix="qwen-agent-rag-bench-") as tmp:
        docs, index_dir = Path(tmp, "docs"), Path(tmp, "index")
        for i in range(count):
            folder = docs / f"part{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            words = rng.choices(vocab, k=rng.randint(20, 40))
            (folder / f"note{i:06d}.txt").write_text(" ".join(words) + ".\n", encoding="utf-8")
        t0 = time.perf_counter()
        rag = Retrieval(files=[str(docs)], index_dir=str(index_dir), max_files=count)
        build = time.perf_counter() - t0
        if len(rag.report.indexed) != count:
            raise SystemExit(f"{len(rag.report.indexed)} of {count} files were indexed")
        t0 = time.perf_counter()
        again = Retrieval(files=[str(docs)], index_dir=str(index_dir), max_files=count)
        reopen = time.perf_counter() - t0
        if again.report.parsed or again.report.rebuilt:
            raise SystemExit("reopen parsed files again: the persistence is broken")
    return build, reopen


if __name__ == "__main__":
    main()
