"""The FastAPI app: routes parse, call the agent, and stream back. No pipeline logic lives here."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse

from agent import AnalysisUnavailable, ImageError, InvalidAudio, Runtime, create_runtime
from server.analyze import face_result, text_result, voice_result
from server.protocol import (
    MAX_AUDIO_UPLOAD_BYTES, MAX_AUDIO_UPLOAD_SECONDS, MAX_IMAGE_BYTES, AnalyzeFaceResponse, AnalyzeTextRequest, AnalyzeTextResponse, TextResult, VoiceResult,
    json_schema,
)
from server.settings import Settings
from server.ws import Connection

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = await create_runtime(settings.runtime_config())
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.aclose()

    app = FastAPI(title="persona-agent", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        runtime: Runtime = app.state.runtime
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                r = await client.get(f"{runtime.llm_root_url}/v1/models")
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        body = {"status": "ready" if ok else "llm_unreachable", "llm": runtime.llm_root_url,
                "llm_model": runtime.agent.llm.config.model}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/schema")
    async def schema() -> dict:
        return json_schema()

    @app.post("/v1/analyze/text", response_model=AnalyzeTextResponse)
    async def analyze_text(req: AnalyzeTextRequest) -> AnalyzeTextResponse:
        try:
            results = await app.state.runtime.agent.analyze_text(req.texts, req.explain)
        except AnalysisUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return AnalyzeTextResponse(results=[TextResult(**text_result(a)) for a in results])

    @app.post("/v1/analyze/voice", response_model=VoiceResult)
    async def analyze_voice(request: Request) -> VoiceResult:
        """Body: one audio file (WAV, FLAC, OGG, MP3, ...), decoded in memory and never stored."""
        body = await _read_body(request, MAX_AUDIO_UPLOAD_BYTES, "audio")
        try:
            result = await app.state.runtime.agent.analyze_voice(body, MAX_AUDIO_UPLOAD_SECONDS)
        except InvalidAudio as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except AnalysisUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return VoiceResult(**voice_result("upload", result))

    @app.post("/v1/analyze/face", response_model=AnalyzeFaceResponse)
    async def analyze_face(request: Request, crop: bool = False, explain: bool = False) -> AnalyzeFaceResponse:
        """Body: one JPEG or PNG, decoded in memory and never stored. `crop=true`: the image is one aligned face crop
        (as in FER-2013); `explain=true`: a 6x6 occlusion saliency grid per face."""
        body = await _read_body(request, MAX_IMAGE_BYTES, "image")
        try:
            result = await app.state.runtime.agent.analyze_face(body, crop, explain)
        except ImageError as exc:
            raise HTTPException(status_code=413 if exc.code == "image_too_large" else 422, detail=f"{exc.code}: {exc}") from None
        except AnalysisUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return AnalyzeFaceResponse(**face_result(result))

    @app.websocket("/v1/chat")
    async def chat(ws: WebSocket) -> None:
        await ws.accept()
        await Connection(app.state.runtime.agent, ws).run()

    return app


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=f"{what} upload over {limit} bytes")
    if not body:
        raise HTTPException(status_code=422, detail=f"empty body: send one {what} file as the request body")
    return bytes(body)
