"""The FastAPI app: routes parse, call the agent, and stream back. No pipeline logic lives here."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse

from agent import AnalysisUnavailable, InvalidAudio, Runtime, create_runtime
from server.analyze import text_result, voice_result
from server.protocol import (
    MAX_AUDIO_UPLOAD_BYTES, MAX_AUDIO_UPLOAD_SECONDS, AnalyzeTextRequest, AnalyzeTextResponse, TextResult, VoiceResult,
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
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_AUDIO_UPLOAD_BYTES:
                raise HTTPException(status_code=413, detail=f"audio upload over {MAX_AUDIO_UPLOAD_BYTES} bytes")
        try:
            result = await app.state.runtime.agent.analyze_voice(bytes(body), MAX_AUDIO_UPLOAD_SECONDS)
        except InvalidAudio as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except AnalysisUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return VoiceResult(**voice_result("upload", result))

    @app.websocket("/v1/chat")
    async def chat(ws: WebSocket) -> None:
        await ws.accept()
        await Connection(app.state.runtime.agent, ws).run()

    return app
