"""Product search: by text (keyword, semantic or hybrid, with facets, spelling correction and
personal re-ranking), autocomplete, by photo and by voice.

``GET /search`` and ``GET /autocomplete`` run on the event loop, like the recommendations: their
work is an index lookup (and, for a query not seen lately, one MiniLM pass) and a thread hop
would cost more than it saves. Photos and voice run in the thread pool: decoding and the image or
speech model take tens to hundreds of milliseconds.
"""

from __future__ import annotations

from dataclasses import replace
from email import policy
from email.parser import BytesParser
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shelfwise.encoders.audio import AudioReadError
from shelfwise.encoders.image import ImageReadError
from shelfwise.search.keyword import SORTS
from shelfwise.serving.deps import AUTH_RESPONSES, Problem, get_history, get_search, read_access
from shelfwise.serving.history import HistoryReader
from shelfwise.serving.search_results import SearchOutcome, SearchRequest
from shelfwise.serving.search_service import TEXT_MODES, SearchService, SearchUnavailable

router = APIRouter(tags=["search"], dependencies=[Depends(read_access)], responses=AUTH_RESPONSES)

Sort = Literal[SORTS]
Mode = Literal[TEXT_MODES]


class Explanation(BaseModel):
    matched_terms: list[str] = Field(description="query words found in the item's title, brand, category or description")
    retrievers: list[Literal["keyword", "semantic", "photo"]] = Field(description="which retrievers found the item")
    personal_boost: float = Field(description="relevance multiplier from the shopper's recent history (1 = none)")


class SearchHit(BaseModel):
    id: str
    title: str
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    image: str | None = None
    in_stock: bool
    score: float
    explanation: Explanation


class Facets(BaseModel):
    category: dict[str, int] = Field(description="category -> matching items")
    brand: dict[str, int] = Field(description="brand -> matching items")
    price: dict[str, int] | None = Field(None, description='price band ("0-25", ..., "500+") -> matching items')


class SearchResults(BaseModel):
    query: str = Field(description="the query searched (for a photo: the file name)")
    corrected: str | None = Field(description="the spelling searched instead, when the query as typed found (almost) nothing")
    results: list[SearchHit]
    facets: Facets
    total: int = Field(description="matching items (hybrid and semantic: the fused candidates)")
    page: int
    per_page: int
    mode: Literal["keyword", "semantic", "hybrid", "image"] = Field(
        description="the mode that answered: keyword while the semantic index is still being built")


class VoiceResults(SearchResults):
    transcript: str = Field(description="what was heard")


class Suggestions(BaseModel):
    query: str
    suggestions: list[str]


async def search_options(
    category: Annotated[str | None, Query(max_length=300, description='this category or any below it, e.g. "Electronics > TV & Video"')] = None,
    brand: Annotated[str | None, Query(max_length=256)] = None,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    in_stock: Annotated[bool | None, Query(description="only items in stock (true) or out of stock (false)")] = None,
    sort: Sort = "relevance",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 24,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128, description="re-rank for this shopper's recent history")] = None,
    session_id: Annotated[str | None, Query(min_length=1, max_length=128, description="or for this session's")] = None,
    histories: HistoryReader = Depends(get_history),
) -> SearchRequest:
    """The filters, sorting, paging and shopper every search endpoint takes (``async``: no thread hop)."""
    history = ()
    if (user_id or session_id) and sort == "relevance":  # the one SQL read of a search (re-ranking is by relevance)
        column, key = ("user_id", user_id) if user_id else ("session_id", session_id)
        history = tuple(histories.read(column, key).items)
    return SearchRequest(q="", category=category, brand=brand, price_min=price_min, price_max=price_max, in_stock=in_stock,
                         sort=sort, page=page, per_page=per_page, history=history)


Options = Annotated[SearchRequest, Depends(search_options)]


def _results(outcome: SearchOutcome, **extra) -> JSONResponse:
    """The answer, serialised straight from plain data: validating ~24 results against the
    response model cost more than the search itself. The shape is the documented model's (the
    tests check it)."""
    return JSONResponse({
        **extra,
        "query": outcome.query,
        "corrected": outcome.corrected,
        "results": [{"id": f.card.id, "title": f.card.title, "category": f.card.category, "brand": f.card.brand,
                     "price": f.card.price, "image": f.card.image, "in_stock": f.card.in_stock, "score": f.score,
                     "explanation": {"matched_terms": f.matched_terms, "retrievers": list(f.retrievers),
                                     "personal_boost": f.personal_boost}}
                    for f in outcome.results],
        "facets": outcome.facets,
        "total": outcome.total,
        "page": outcome.page,
        "per_page": outcome.per_page,
        "mode": outcome.mode,
    })


@router.get("/search", response_model=SearchResults)
async def search(
    options: Options,
    q: Annotated[str, Query(min_length=1, max_length=200, description="what the shopper typed")],
    mode: Annotated[Mode, Query(description="keyword (BM25), semantic (MiniLM vectors) or hybrid (both, fused)")] = "hybrid",
    service: SearchService = Depends(get_search),
) -> JSONResponse:
    """Items matching a query, one page at a time, with facet counts. A query whose spelling finds
    (almost) nothing is searched corrected (`corrected` says so). With `user_id` or `session_id`,
    items in the categories and brands of that shopper's recent history move up."""
    return _results(service.search(replace(options, q=q, mode=mode)))


@router.get("/autocomplete", response_model=Suggestions)
async def autocomplete(q: Annotated[str, Query(min_length=1, max_length=200, description="what has been typed so far")],
                       k: Annotated[int, Query(ge=1, le=50)] = 10, service: SearchService = Depends(get_search)) -> Suggestions:
    """Completions of a prefix from past searches and catalogue titles (spelling-corrected when
    nothing completes it as typed)."""
    return Suggestions(query=q, suggestions=service.suggest(q, k))


def _upload_body(kind: str, types: str) -> dict:
    """OpenAPI: an upload is a multipart field ``file`` or the raw bytes."""
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary", "description": kind}}}},
        types: {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }}}


async def read_upload(request: Request, kind: str) -> tuple[bytes, str]:
    """(bytes, file name) of an upload: the multipart field ``file``, else the raw request body.
    The body is already bounded by the app's size limit (413 beyond it)."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    name = ""
    if content_type.startswith("multipart/form-data"):
        # The standard library's MIME parser: no extra dependency for one field.
        message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"] \
            if message.is_multipart() else []
        if not parts:
            raise HTTPException(400, f"no {kind}: send it as the multipart field 'file' or as the raw request body")
        body, name = parts[0].get_payload(decode=True) or b"", parts[0].get_filename() or ""
    if not body:
        raise HTTPException(400, f"no {kind}: the upload is empty")
    return body, name


@router.post("/search/image", response_model=SearchResults, openapi_extra=_upload_body("a photo (JPEG, PNG, WebP, ...)", "image/*"),
             responses={400: {"model": Problem, "description": "the photo cannot be read"},
                        503: {"model": Problem, "description": "no multimodal model trained, or its index is still being built"}})
async def search_by_photo(request: Request, options: Options, service: SearchService = Depends(get_search)) -> JSONResponse:
    """Items that look like the photo, through the multimodal model's aligned photo/text space
    (`shelfwise bench multimodal` trains one). Filters, sorting and paging as for `GET /search`."""
    photo, name = await read_upload(request, "photo")
    try:
        outcome = await run_in_threadpool(service.search_photo, photo, options, name)
    except SearchUnavailable as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "60"}) from None
    except ImageReadError as e:
        raise HTTPException(400, f"cannot read the photo: {e}") from None
    return _results(outcome)


@router.post("/search/voice", response_model=VoiceResults, openapi_extra=_upload_body("a spoken query (WAV, MP3, OGG)", "audio/*"),
             responses={400: {"model": Problem, "description": "the audio cannot be decoded, or is longer than a query"}})
async def search_by_voice(request: Request, options: Options,
                          mode: Annotated[Mode, Query(description="how the transcript is searched")] = "hybrid",
                          service: SearchService = Depends(get_search)) -> JSONResponse:
    """A spoken query: transcribed by Whisper tiny.en (prompted with the catalogue's words), words
    the shop never uses corrected, then searched like `GET /search`; the transcript comes back too."""
    audio, _ = await read_upload(request, "audio")
    try:
        transcript, outcome = await run_in_threadpool(service.search_voice, audio, replace(options, mode=mode))
    except AudioReadError as e:
        raise HTTPException(400, f"cannot read the audio: {e}") from None
    return _results(outcome, transcript=transcript)
