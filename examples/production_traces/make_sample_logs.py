"""Write sample production logs of a support agent in the three formats `hero import` reads.

    .venv/bin/python examples/production_traces/make_sample_logs.py runs/production/logs

Makes ``langsmith/runs.jsonl`` (a LangSmith run export), ``otel/spans.jsonl`` (OTLP/JSON
GenAI spans), and ``openai/requests-0.jsonl``, ``openai/requests-1.jsonl`` (logged chat
requests in two shards), each with personal data in the conversations (for redaction to find)
and two broken records (for the import to report). Replace them with your own exports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sample_logs import write_samples  # beside this script


def main(folder: Path, conversations: int = 4) -> dict[str, int]:
    """Write the sample logs under `folder`; returns the traces written per format."""
    return {
        "langsmith": write_samples(
            "langsmith", folder / "langsmith" / "runs.jsonl", conversations, seed=1, broken=2
        ),
        "otel": write_samples(
            "otel", folder / "otel" / "spans.jsonl", conversations, seed=2, broken=2
        ),
        "openai": sum(
            write_samples(
                "openai",
                folder / "openai" / f"requests-{shard}.jsonl",
                conversations,
                seed=3 + shard,
                broken=1,
                style="requests",
            )
            for shard in range(2)
        ),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--conversations", type=int, default=4, help="Per format (and shard).")
    args = parser.parse_args()
    written = main(args.folder, args.conversations)
    print(", ".join(f"{count} {name} traces" for name, count in written.items()), "→", args.folder)
