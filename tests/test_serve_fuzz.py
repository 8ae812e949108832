"""A short fuzz run of the HTTP API, from its own OpenAPI description.

schemathesis reads ``/openapi.json`` from the trained MGAT served on loopback
(the ``client`` fixture of conftest.py) and, for every operation, sends both
requests that follow the schema and requests that break it. No answer may be a
5xx, and every answer must match the response the description documents.

Generation is derandomized and the example database off, so each run sends the
same requests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
import schemathesis
import torch
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from mgat.serve import MAX_REQUEST_HEAD_BYTES

logger = logging.getLogger(__name__)

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance]
# The server reads request heads up to MAX_REQUEST_HEAD_BYTES; past it, uvicorn's
# parser answers 400 and closes the connection, so the client may read a reset.
# 1 KiB of the limit is left for the method and the headers.
MAX_URL_BYTES = MAX_REQUEST_HEAD_BYTES - 1024
SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    # Some operations have few or no inputs to break (``/health``), so most
    # negative draws are rejected; that is expected, not a slow strategy.
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def api_schema(one_thread, client):
    # An empty configuration: no schemathesis.toml found on disk changes the run.
    url = str(client.base_url.join("/openapi.json"))
    return schemathesis.openapi.from_url(url, config=SchemathesisConfig())


def operations(schema) -> list:
    """Every operation the schema describes; one it cannot describe raises."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


def url_bytes(case) -> int:
    """The length of the URL the case is sent to, query string included."""
    sent = case.as_transport_kwargs()
    url = requests.Request("GET", sent["url"], params=sent["params"]).prepare().url
    return len(url.encode())


def fuzz(operation, mode: GenerationMode, session: requests.Session) -> int:
    """Send generated requests to one operation; the number sent."""
    sent = 0

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case) -> None:
        nonlocal sent
        assume(url_bytes(case) <= MAX_URL_BYTES)
        sent += 1
        case.call_and_validate(session=session, checks=CHECKS)

    send()
    return sent


def takes_input(operation) -> bool:
    """Whether a request to the operation has anything a negative case can break."""
    return any(operation.iter_parameters()) or any(operation.body)


# Six operations; /health and /model take no input, so four have negative cases.
@pytest.mark.parametrize(
    ("mode", "expected"),
    [(GenerationMode.POSITIVE, 6), (GenerationMode.NEGATIVE, 4)],
    ids=["positive", "negative"],
)
def test_no_server_errors_and_documented_answers(api_schema, mode, expected):
    fuzzed = [
        op for op in operations(api_schema) if mode.is_positive or takes_input(op)
    ]
    with requests.Session() as session:
        sent = {op.label: fuzz(op, mode, session) for op in fuzzed}

    logger.info("%s requests per operation: %s", mode.value, sent)
    assert len(sent) == expected, f"expected {expected} operations, got {list(sent)}"
    assert all(sent.values()), f"an operation got no requests: {sent}"
