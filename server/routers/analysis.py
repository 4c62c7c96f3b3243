"""Batch analysis without a conversation: text, one audio file, one image (a secret key; each draws rate tokens by
its size). Uploads are read into memory with a size cap and never stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from agent import AnalysisBusy, AnalysisUnavailable, ImageError, InvalidAudio
from agent.analysis import FaceAnalysis, TextAnalyses, VoiceAnalysis
from server.deps import AUTH, ERR, agent, rated, secret
from server.limits import face_cost, text_cost, voice_cost
from server.protocol import (
    MAX_AUDIO_UPLOAD_BYTES,
    MAX_AUDIO_UPLOAD_SECONDS,
    MAX_IMAGE_BYTES,
    AnalyzeTextRequest,
)

router = APIRouter(prefix="/v1/analyze", responses={**AUTH, 503: ERR})
BODY_LIMITS = {"/v1/analyze/voice": MAX_AUDIO_UPLOAD_BYTES + 1, "/v1/analyze/face": MAX_IMAGE_BYTES + 1}  # for Edge


def _binary_body() -> dict[str, Any]:
    """Routes that read the raw body (one file, streamed with a size cap; its format is sniffed) document it here."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }


def _busy(exc: Exception) -> HTTPException:
    return HTTPException(status_code=503, detail=str(exc))


@router.post("/text", response_model=TextAnalyses)
async def analyze_text(req: AnalyzeTextRequest, request: Request) -> TextAnalyses:
    """Draws 1 rate token per 16 texts, and 1 more per text with `explain`."""
    await rated(request, secret(request), text_cost(req.texts, req.explain))
    try:
        results = await agent(request).analyze_text(req.texts, req.explain)
    except (AnalysisUnavailable, AnalysisBusy) as exc:
        raise _busy(exc) from None
    return TextAnalyses(results=list(results))


@router.post("/voice", response_model=VoiceAnalysis, responses={413: ERR, 422: ERR}, openapi_extra=_binary_body())
async def analyze_voice(request: Request) -> VoiceAnalysis:
    """Body: one audio file (WAV, FLAC, OGG, MP3, ...), decoded in memory and never stored. Draws 1 rate token
    per 10 s of audio."""
    key = secret(request)
    await rated(request, key)
    body = await read_body(request, MAX_AUDIO_UPLOAD_BYTES, "audio")

    async def charge(seconds: float) -> None:
        await rated(request, key, voice_cost(seconds) - 1)  # the first token was drawn before the body was read

    try:
        result = await agent(request).analyze_voice(body, MAX_AUDIO_UPLOAD_SECONDS, charge)
    except InvalidAudio as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except (AnalysisUnavailable, AnalysisBusy) as exc:
        raise _busy(exc) from None
    return result


@router.post("/face", response_model=FaceAnalysis, responses={413: ERR, 422: ERR}, openapi_extra=_binary_body())
async def analyze_face(request: Request, crop: bool = False, explain: bool = False) -> FaceAnalysis:
    """Body: one JPEG or PNG, decoded in memory and never stored. `crop=true`: the image is one aligned face crop
    (as in FER-2013); `explain=true`: a 6x6 occlusion saliency grid per face (4 rate tokens instead of 1)."""
    await rated(request, secret(request), face_cost(explain))
    body = await read_body(request, MAX_IMAGE_BYTES, "image")
    try:
        result = await agent(request).analyze_face(body, crop, explain)
    except ImageError as exc:
        raise HTTPException(
            status_code=413 if exc.code == "image_too_large" else 422, detail=f"{exc.code}: {exc}"
        ) from None
    except (AnalysisUnavailable, AnalysisBusy) as exc:
        raise _busy(exc) from None
    return result


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=f"{what} upload over {limit} bytes")
    if not body:
        raise HTTPException(status_code=422, detail=f"empty body: send one {what} file as the request body")
    return bytes(body)
