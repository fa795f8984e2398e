"""Import throughput (traces per second) and peak memory of `hero import` at 100k traces.

Writes sample production logs of the support agent (`examples/production_traces/sample_logs.py`:
3 to 6 model calls per conversation, 30% with a follow-up trace in the same thread; LangSmith
runs of concurrent traces interleaved, OTel traces split over two export requests written
apart) and imports each file in a fresh process that writes every trajectory to JSONL, as
``hero import`` does. Peak memory is that process's maximum resident set size (``ru_maxrss``),
shown beside its size once imports are loaded and before the first record is read. Running a
smaller size too shows that memory does not grow with the number of traces: grouping holds one
of 256 on-disk partitions at a time, so what it holds grows with the input only until a
partition reaches ``--group-memory``; larger partitions are split again before they are read.

    .venv/bin/python benchmarks/import_throughput.py [--traces 100000] [--small 10000]
        [--formats openai,langsmith,otel] [--group-memory 32] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hero_agents.adapters.importers.pipeline import DEFAULT_MEMORY_BYTES


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(format_name: str, logs: str, out: str, group_memory: int) -> None:
    """Import `logs` once and print the figures as JSON (run in a fresh process)."""
    from hero_agents.adapters.importers import ImportSettings, import_traces
    from hero_agents.storage import TrajectoryWriter

    before = _rss_mib()
    started = time.perf_counter()
    with TrajectoryWriter(out) as writer:
        report = import_traces(
            format_name, logs, writer.write, ImportSettings(memory_bytes=group_memory << 20)
        )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "seconds": seconds,
        "trajectories": report.trajectories,
        "problems": report.problem_count,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
    }
    print(json.dumps(figures))


def measure(format_name: str, conversations: int, workdir: Path, group_memory: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "production_traces"))
    from sample_logs import write_samples

    logs = workdir / f"{format_name}-{conversations}.jsonl"
    out = workdir / f"{format_name}-{conversations}.trajectories.jsonl"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    traces = write_samples(
        format_name,
        logs,
        conversations,
        style="requests" if format_name == "openai" else "conversations",
    )
    generated = time.perf_counter() - started
    command = [
        sys.executable,
        __file__,
        "--child",
        format_name,
        str(logs),
        str(out),
        str(group_memory),
    ]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures.update(traces=traces, input_mib=logs.stat().st_size / 2**20, generate_s=generated)
    logs.unlink()
    out.unlink()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000, help="Conversations per format.")
    parser.add_argument("--small", type=int, default=10_000, help="A smaller size (0: skip).")
    parser.add_argument("--formats", default="openai,langsmith,otel")
    parser.add_argument("--group-memory", type=int, default=DEFAULT_MEMORY_BYTES >> 20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        format_name, logs, out, group_memory = args.child
        child(format_name, logs, out, int(group_memory))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hero-import-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [size for size in (args.small, args.traces) if size]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; --group-memory {args.group_memory} MiB; "
        f"scratch and logs in {workdir}"
    )
    print("openai = logged requests grouped by thread; each import in a fresh process")
    header = (
        f"{'format':<10}{'conversations':>14}{'traces':>9}{'input MiB':>11}{'seconds':>9}"
        f"{'traces/s':>10}{'RSS before':>12}{'peak RSS':>10}"
    )
    print(header)
    for format_name in args.formats.split(","):
        for size in sizes:
            f = measure(format_name, size, workdir, args.group_memory)
            print(
                f"{format_name:<10}{size:>14}{f['traces']:>9}{f['input_mib']:>11.0f}"
                f"{f['seconds']:>9.1f}{f['traces'] / f['seconds']:>10.0f}"
                f"{f['rss_before_mib']:>10.0f}MB{f['peak_rss_mib']:>8.0f}MB",
                flush=True,
            )
            if f["problems"] or f["trajectories"] != size:
                raise SystemExit(f"unexpected import result: {f}")


if __name__ == "__main__":
    main()
