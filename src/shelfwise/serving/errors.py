"""Request validation errors: one readable line per problem, and an OpenAPI document that says
so (FastAPI documents its own ``{"detail": [...]}`` shape for 422, which these answers replace)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class FieldProblem(BaseModel):
    field: str
    message: str


class ValidationProblems(BaseModel):
    detail: str  # the first few problems as one line: "events[2].ts: Input should be ..."
    errors: list[FieldProblem] = []  # absent when a stored-data rule, not a field type, failed


UNREADABLE_BODY = {
    "description": "the body could not be parsed (not JSON, or not UTF-8)",
    "content": {"application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}},
}


def _where(loc: tuple) -> str:
    """('body', 'events', 2, 'ts') -> 'events[2].ts'."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line per problem (field path: message), no echo of the input."""
    problems = [{"field": _where(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    if len(problems) > 5:
        summary += f"; and {len(problems) - 5} more"
    return JSONResponse({"detail": summary, "errors": problems[:100]}, status_code=422)


def install(app: FastAPI) -> None:
    """Answer validation errors as above, and document that shape as every operation's 422."""
    app.add_exception_handler(RequestValidationError, validation_error)

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                ours = ValidationProblems.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(ours.pop("$defs", {}))
                schemas["HTTPValidationError"] = ours
                schemas.pop("ValidationError", None)
            for operation in (op for path in document.get("paths", {}).values() for op in path.values()):
                if "requestBody" in operation:  # Starlette answers 400 to a body it cannot parse
                    operation.setdefault("responses", {}).setdefault("400", UNREADABLE_BODY)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi
