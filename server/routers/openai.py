"""`POST /v1/chat/completions`, OpenAI-compatible, through the same turn as the WebSocket (server/openai_compat.py
holds the shapes and the translation of the turn's events)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from server.deps import AUTH, ERR, agent, caller, guard, rated
from server.openai_compat import ChatCompletionRequest, TurnFailed, profile_of, respond, stream

router = APIRouter(prefix="/v1")


@router.post(
    "/chat/completions",
    responses={
        200: {
            "description": "a chat.completion (JSON), or with `stream: true` chat.completion.chunk server-sent events",
            "content": {"application/json": {}, "text/event-stream": {}},
        },
        **AUTH,
        422: ERR,
        503: ERR,
    },
)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI-compatible chat completions through the same turn as the WebSocket; our readings in `persona_agent`.
    With a publishable key, `user` is honoured only with a `user_token` vouching for it (else the turn is
    anonymous)."""
    key = caller(request)
    tenant = await rated(request, key)
    user, _ = guard(request).verified_user(key, req.user, req.user_token)
    a = agent(request)
    try:
        history, text, tools = req.split()
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    events = a.complete(
        history,
        text,
        tenant=tenant,
        user_id=user,
        profile=profile_of(req.model, a.profile_names),
        locale=req.locale,
        tools=tools,
    )
    if req.stream:
        return StreamingResponse(stream(events, req.model), media_type="text/event-stream")
    try:
        return JSONResponse(await respond(events, req.model))
    except TurnFailed as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
