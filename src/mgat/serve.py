"""An HTTP service for a trained model (FastAPI; ``mgat serve`` runs it).

The model is loaded and every representation computed once, when the app is
created; requests only read them. Scoring runs in a worker thread, never on the
event loop, and each request is scored as one batch.

Endpoints (ids are the original user and item ids, as strings or numbers):

- ``GET /health``: liveness.
- ``GET /model``: model name, counts, modalities, configuration.
- ``GET /users/{user_id}/recommendations?k=20&explain=false&exclude=ID``: the
  user's top K, training items and ``exclude`` items left out; with
  ``explain``, each modality's share of the score and the most attended past
  items.
- ``POST /scores``: ``{"pairs": [[user, item], ...]}`` or
  ``{"user": ..., "items": [...]}``: the score of each pair.
- ``POST /recommendations/new-user``: ``{"items": [...], "k": 20}``: top K for a
  user unknown to the model, folded in from the items they chose.
- ``POST /items/score-new``: ``{"user": ..., "features": {"visual": [[...]],
  ...}}``: scores of items absent from training, from their features alone.

Unknown user or item ids answer 404; a value out of range, a malformed body or
a request the model cannot serve (e.g. new items for an ID-only model) answer
422, with a message that says what was expected.

Shapes: U users, I items, B pairs or items in a request, K the cut-off.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route
# annotations at runtime, and they use values local to ``create_app``.

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mgat import __version__
from mgat.errors import MgatError, UnknownIdError
from mgat.models.base import Recommender
from mgat.recommend import NO_ITEM, Scorer, explain, explain_new_user, load_saved
from mgat.saved import SavedModel

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
"""The most pairs, items or feature rows one request may carry."""

DEFAULT_K = 20

Id = Annotated[str, Field(min_length=1, max_length=256)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Body(BaseModel):
    """Request bodies: numbers are accepted as ids, unknown fields rejected."""

    model_config = ConfigDict(coerce_numbers_to_str=True, extra="forbid")


class ScoreRequest(Body):
    """Either ``pairs`` or ``user`` with ``items``."""

    pairs: list[tuple[Id, Id]] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    user: Id | None = None
    items: list[Id] | None = Field(None, min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def one_form(self) -> "ScoreRequest":
        by_pairs = self.pairs is not None
        by_user = self.user is not None and self.items is not None
        partial_user = (self.user is None) != (self.items is None)
        if by_pairs == by_user or partial_user:
            raise ValueError(
                'expected either {"pairs": [[user, item], ...]} or '
                '{"user": ..., "items": [...]}'
            )
        return self


class NewUserRequest(Body):
    items: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(DEFAULT_K, ge=1)
    explain: bool = False
    exclude_given: bool = True


class NewItemsRequest(Body):
    user: Id
    features: dict[str, list[list[FiniteFloat]]] = Field(min_length=1)
    ids: list[Id] | None = None

    @model_validator(mode="after")
    def rectangular(self) -> "NewItemsRequest":
        counts = {len(rows) for rows in self.features.values()}
        count = counts.pop()
        if counts or not 1 <= count <= MAX_BATCH:
            raise ValueError(
                f"expected every modality to give the same number (1 to "
                f"{MAX_BATCH}) of feature rows"
            )
        for name, rows in self.features.items():
            if len({len(row) for row in rows}) != 1:
                raise ValueError(f"features {name!r}: rows of different lengths")
        if self.ids is not None and len(self.ids) != count:
            raise ValueError(f"expected {count} ids, one per row, got {len(self.ids)}")
        return self


MAX_REQUEST_HEAD_BYTES = 1 << 20
"""The request line and headers the server reads: ``exclude``'s 10,000 ids in a
query string take about 100 KB, far past uvicorn's default of 16 KiB."""


class FieldError(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ErrorOut(BaseModel):
    """An error: one message, or one entry per malformed field of the request."""

    detail: str | list[FieldError]


ERRORS = {
    404: {"model": ErrorOut, "description": "An unknown user or item id."},
    422: {
        "model": ErrorOut,
        "description": "A malformed request, a value out of range, or a request "
        "the model cannot serve.",
    },
}
"""The error answers of every endpoint that reads input, for the OpenAPI schema."""


class Evidence(BaseModel):
    item: str
    weight: float
    gate: float | None = None


class ExplanationOut(BaseModel):
    shares: dict[str, float]
    evidence: dict[str, list[Evidence]] = {}


class Recommendation(BaseModel):
    rank: int
    item: str
    score: float
    explanation: ExplanationOut | None = None


class Recommendations(BaseModel):
    user: str | None
    k: int
    recommendations: list[Recommendation]


class PairScore(BaseModel):
    user: str
    item: str
    score: float


class Scores(BaseModel):
    scores: list[PairScore]


class NewItemScore(BaseModel):
    item: str
    score: float
    rank: int


class NewItemScores(BaseModel):
    user: str
    scores: list[NewItemScore]


class ModelInfo(BaseModel):
    model: str
    dataset: str | None
    num_users: int
    num_items: int
    num_train_interactions: int
    modalities: dict[str, int]
    explanation_parts: list[str]
    scores_new_items: bool
    config: dict
    version: str


class Service:
    """The scoring behind the endpoints, on a ``Scorer`` built once.

    Every method is synchronous and called from a worker thread.
    """

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.saved = scorer.saved

    def info(self) -> ModelInfo:
        saved, model = self.saved, self.saved.model
        return ModelInfo(
            model=model.name,
            dataset=saved.manifest.get("dataset"),
            num_users=self.scorer.num_users,
            num_items=self.scorer.num_items,
            num_train_interactions=len(saved.train),
            modalities={m: int(f.shape[1]) for m, f in saved.features.items()},
            explanation_parts=self.scorer.parts,
            scores_new_items=_scores_new_items(model),
            config=saved.manifest.get("config", {}),
            version=__version__,
        )

    def recommend_user(
        self, user_id: str, k: int, with_explanations: bool, exclude: list[str]
    ) -> Recommendations:
        user = self.saved.user_index([user_id])
        excluded = self.scorer.item_index(exclude) if exclude else None
        items, scores = self.scorer.recommend(user, k, exclude_items=excluded)
        items, scores = _filled(items[0], scores[0])
        why = explain(self.scorer, user[0], items) if with_explanations else None
        return self._recommendations(user_id, k, items, scores, why)

    def recommend_new_user(self, body: NewUserRequest) -> Recommendations:
        chosen = self.saved.item_index(body.items)
        items, scores = self.scorer.recommend_new_users(
            [chosen], body.k, body.exclude_given
        )
        items, scores = _filled(items[0], scores[0])
        why = explain_new_user(self.scorer, chosen, items) if body.explain else None
        return self._recommendations(None, body.k, items, scores, why)

    def score(self, body: ScoreRequest) -> Scores:
        if body.pairs is not None:
            user_ids = [u for u, _ in body.pairs]
            item_ids = [i for _, i in body.pairs]
        else:
            user_ids, item_ids = [body.user] * len(body.items), body.items
        users = self.saved.user_index(user_ids)
        items = self.scorer.item_index(item_ids)
        values = self.scorer.score(users, items)
        return Scores(
            scores=[
                PairScore(user=u, item=i, score=float(s))
                for u, i, s in zip(user_ids, item_ids, values, strict=True)
            ]
        )

    def score_new_items(self, body: NewItemsRequest) -> NewItemScores:
        user = self.saved.user_index([body.user])
        features = {name: np.asarray(rows) for name, rows in body.features.items()}
        values = self.scorer.score_new_items(user, features)[0]
        count = len(values)
        ids = body.ids or [str(row) for row in range(count)]
        ranks = np.empty(count, dtype=np.int64)
        ranks[np.argsort(-values, kind="stable")] = np.arange(1, count + 1)
        return NewItemScores(
            user=body.user,
            scores=[
                NewItemScore(item=i, score=float(s), rank=int(r))
                for i, s, r in zip(ids, values, ranks, strict=True)
            ],
        )

    def _recommendations(self, user_id, k, items, scores, why) -> Recommendations:
        item_ids = self.scorer.item_ids
        rows = []
        for rank, (item, score) in enumerate(zip(items, scores, strict=True), start=1):
            explanation = None
            if why is not None:
                explanation = ExplanationOut(
                    **_explanation_fields(why[rank - 1], item_ids)
                )
            rows.append(
                Recommendation(
                    rank=rank,
                    item=str(item_ids[item]),
                    score=float(score),
                    explanation=explanation,
                )
            )
        return Recommendations(user=user_id, k=k, recommendations=rows)


def create_app(source: str | Path | SavedModel | Scorer) -> FastAPI:
    """The FastAPI app serving a run directory, a saved model or a scorer.

    Representations are computed here, once, before the app serves anything.
    """
    if isinstance(source, Scorer):
        scorer = source
    else:
        saved = source if isinstance(source, SavedModel) else load_saved(source)
        scorer = Scorer.from_saved(saved)
    service = Service(scorer)
    num_items = scorer.num_items
    logger.info(
        "serving %s: %d users, %d items", scorer.model.name, scorer.num_users, num_items
    )

    app = FastAPI(
        title="mgat",
        version=__version__,
        summary="Recommendations, scores and explanations from a trained model.",
    )
    app.state.service = service
    _add_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/model", response_model=ModelInfo)
    async def model_info() -> ModelInfo:
        return service.info()

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=Recommendations,
        responses=ERRORS,
    )
    async def user_recommendations(
        user_id: str,
        k: Annotated[int, Query(ge=1, le=num_items)] = min(DEFAULT_K, num_items),
        explain: bool = False,
        exclude: Annotated[list[str] | None, Query(max_length=MAX_BATCH)] = None,
    ) -> Recommendations:
        return await run_in_threadpool(
            service.recommend_user, user_id, k, explain, exclude or []
        )

    @app.post("/scores", response_model=Scores, responses=ERRORS)
    async def scores(body: ScoreRequest) -> Scores:
        return await run_in_threadpool(service.score, body)

    @app.post(
        "/recommendations/new-user", response_model=Recommendations, responses=ERRORS
    )
    async def new_user(body: NewUserRequest) -> Recommendations:
        if body.k > num_items:
            raise HTTPException(
                422, f"k: expected an integer in [1, {num_items}], got {body.k}."
            )
        return await run_in_threadpool(service.recommend_new_user, body)

    @app.post("/items/score-new", response_model=NewItemScores, responses=ERRORS)
    async def score_new(body: NewItemsRequest) -> NewItemScores:
        return await run_in_threadpool(service.score_new_items, body)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which may be huge or
        # hold NaN (not valid JSON); type, location and message suffice.
        errors = [
            {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]}
            for e in err.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, err: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(MgatError)
    async def unprocessable(request: Request, err: MgatError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)


def _filled(items: np.ndarray, scores: np.ndarray):
    keep = items != NO_ITEM
    return items[keep], scores[keep]


def _explanation_fields(explanation, item_ids) -> dict:
    fields = explanation.to_dict(item_ids)
    return {"shares": fields["shares"], "evidence": fields["evidence"]}


def _scores_new_items(model: Recommender) -> bool:
    """Whether the model overrides the default that refuses unseen items."""
    return type(model).new_item_parts is not Recommender.new_item_parts
