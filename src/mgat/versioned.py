"""Reading the JSON files that describe what mgat writes (models, checkpoints).

Each such file is an object with ``format`` (what it is) and ``version`` (of its
layout), so a reader can refuse, with the fix, a file it does not understand.
"""

from __future__ import annotations

import json
from pathlib import Path

from mgat.errors import CheckpointError


def read_versioned_json(
    path: Path,
    format_name: str,
    version: int,
    kind: str,
    corrupt_fix: str,
    version_fix: str,
) -> dict:
    """The JSON object at ``path``, checked to be ``format_name`` at ``version``.

    Args:
        path: the file to read.
        format_name: the value its ``format`` key must have.
        version: the value its ``version`` key must have.
        kind: what the file is, for the messages (e.g. "mgat checkpoint").
        corrupt_fix: what to do about a file that is not valid JSON.
        version_fix: what to do about a file of another version.

    Raises:
        CheckpointError: the file is not valid JSON, not of this format, or of
            another version.
    """
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path}: not valid JSON ({err}); the {kind} is truncated or corrupt. "
            f"{corrupt_fix}"
        ) from err
    if not isinstance(content, dict) or content.get("format") != format_name:
        raise CheckpointError(f"{path}: not an {kind}.")
    if content.get("version") != version:
        raise CheckpointError(
            f"{path}: {kind} format version {content.get('version')!r}; this mgat "
            f"reads version {version}. {version_fix}"
        )
    return content
