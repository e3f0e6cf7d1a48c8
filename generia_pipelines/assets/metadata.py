"""What the assets show in the UI: image previews, table previews, the platform's contract."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dagster import MetadataValue

from generia_pipelines.clients.grpc_base import GrpcClient


def contract_md(*clients: GrpcClient) -> MetadataValue:
    """What each service's contract check found (GENERIA_CONTRACT_CHECK), for the UI."""
    return MetadataValue.md("\n".join(f"- {c.contract.summary()}" for c in clients))


def image_gallery(items: Iterable[tuple[str, str]], limit: int = 12) -> MetadataValue:
    """Markdown image previews (Dagster has no image metadata type)."""
    cells = [f"![{label}]({url})" for label, url in items if url][:limit]
    return MetadataValue.md(" ".join(cells) if cells else "_no images yet_")


def table_md(
    header: Sequence[str], rows: Iterable[Sequence[Any]], limit: int = 20
) -> MetadataValue:
    """A small markdown table preview for the UI."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in list(rows)[:limit]:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ")[:120] for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return MetadataValue.md("\n".join(lines))
