"""One WebSocket connection: parse each frame, hand it to the agent, send back what the agent emits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agent import (
    Agent,
    AudioBackpressure,
    Conversation,
    FaceUnavailable,
    ImageBackpressure,
    InboxFull,
    InvalidAudio,
    SessionInUse,
    UnknownCall,
    UnknownProfile,
    UnknownSession,
    VoiceUnavailable,
)
from agent.events import ErrorEvent, Event
from agent.metrics import ERRORS, FRAMES
from agent.sessions import LOCAL_TENANT, SessionErased
from server.auth import ApiKey, Guard
from server.limits import Quota, bucket_limits
from server.protocol import (
    MAX_IMAGE_BYTES,
    AudioFrame,
    ClientMessage,
    ControlsOverride,
    ProtocolError,
    ResponseAudioPlayed,
    ResponseCancel,
    SessionStart,
    ToolResultEvent,
    ToolsUpdate,
    UserAudio,
    UserAudioEnd,
    UserImage,
    UserText,
    is_large,
    parse_client,
    to_wire,
    tool_use,
)

ACTIVITY = (
    SessionStart,
    UserText,
    UserImage,
    AudioFrame,
    UserAudio,
    UserAudioEnd,
    ResponseAudioPlayed,
    ToolResultEvent,
)  # not idle
TURNS = (UserText, UserImage)  # each draws a token of the key's rate
SESSION_EVENTS = (
    SessionStart,
    ControlsOverride,
    UserAudioEnd,
    ToolsUpdate,
    ToolResultEvent,
)  # each draws from the key's bucket of session events

log = logging.getLogger(__name__)


class Connection:
    def __init__(
        self,
        agent: Agent,
        ws: WebSocket,
        quota: Quota | None = None,
        idle_timeout_s: float = 600.0,
        tenant: str = LOCAL_TENANT,
        guard: Guard | None = None,
        key: ApiKey | None = None,
    ) -> None:
        self.agent, self.ws = agent, ws
        self.guard, self.key = guard, key  # the key that opened this connection: its scope, and is it still valid
        self._checked = time.monotonic()
        self.tenant = tenant  # whose sessions this connection may start, resume and write
        self.quota, self.idle_timeout_s = quota, idle_timeout_s
        self.conversation: Conversation | None = None
        self.voice_consent = False
        self.face_consent = False
        self._send_lock = asyncio.Lock()
        # The last real activity either way (a turn, media, a reply; not an error, not a no-op): idle means silence on
        # both sides, and a client cannot hold its key's session slot for ever by sending junk or cancels.
        self._last_event = time.monotonic()

    async def emit(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            ERRORS.labels(event.code).inc()
        async with self._send_lock:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return
            if not isinstance(event, ErrorEvent):
                self._last_event = time.monotonic()
            try:
                await self.ws.send_text(to_wire(event))
                if isinstance(event, ErrorEvent) and event.code == "session_erased":
                    await self.ws.close(code=4410)  # gone: run() ends, the conversation closes without saving
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left; the conversation is closed by run()'s finally

    async def error(self, code: str, message: str, retryable: bool = False) -> None:
        await self.emit(ErrorEvent(code=code, message=message, retryable=retryable))

    async def run(self) -> None:
        try:
            while True:
                recheck = self.guard.recheck_s if self.guard is not None else self.idle_timeout_s
                wait = max(0.05, min(self._last_event + self.idle_timeout_s - time.monotonic(), recheck))
                try:
                    msg = await asyncio.wait_for(self.ws.receive(), wait)
                except TimeoutError:
                    msg = None
                if not await self._key_valid() or await self._closed_idle():
                    return
                if msg is None:
                    continue
                if msg["type"] == "websocket.disconnect":
                    return
                text = msg.get("text")
                raw: str | bytes = text if text is not None else (msg.get("bytes") or b"")
                try:  # a camera frame (up to ~5.6 MB of JSON) is parsed off the event loop
                    event = await asyncio.to_thread(parse_client, raw) if is_large(raw) else parse_client(raw)
                except ProtocolError as exc:
                    await self.error(exc.code, exc.message)
                    continue
                if isinstance(event, ACTIVITY):
                    self._last_event = time.monotonic()
                try:
                    await self.dispatch(event)
                except SessionErased:  # erased elsewhere, found by a save this event made
                    if self.conversation is not None:
                        await self.conversation.erase()
                except Exception:  # a bug must not end the session: say so and keep reading
                    log.exception("dispatch failed")
                    await self.error("internal_error", "the server failed to handle that event", retryable=True)
        except WebSocketDisconnect:
            return
        finally:
            if self.conversation is not None:
                await self.conversation.close()

    async def _closed_idle(self) -> bool:
        """Close the connection if nothing real happened either way for idle_timeout_s (no-ops and errors do not
        count), unless a reply is streaming or speech is being read."""
        if time.monotonic() - self._last_event < self.idle_timeout_s:
            return False
        if self.conversation is not None and self.conversation.busy:
            return False  # the client is waiting, not idle
        voice = self.conversation.voice if self.conversation is not None else None
        log.info("closing idle connection (voice input: %s)", voice.state() if voice is not None else "none")
        await self.error("idle_timeout", f"no activity for {self.idle_timeout_s:g} s; closing")
        await self.ws.close(code=1001)
        return True

    async def _key_valid(self) -> bool:
        """Every guard.recheck_s: is the key that opened this connection still valid? A revoked key's socket ends."""
        if self.guard is None or self.key is None or time.monotonic() - self._checked < self.guard.recheck_s:
            return True
        self._checked = time.monotonic()
        if await asyncio.to_thread(self.guard.still_valid, self.key):
            return True
        await self.error("key_revoked", "the API key of this connection was revoked; closing")
        await self.ws.close(code=1008)
        return False

    async def dispatch(self, event: ClientMessage) -> None:
        if self.quota is not None and isinstance(event, TURNS) and not await self.quota.take():
            await self.error(
                "rate_limited",
                f"this key may send {self.quota.key.rate_per_min} messages and frames "
                "per minute; this one was not processed",
                retryable=True,
            )
            return
        if self.quota is not None and isinstance(event, SESSION_EVENTS) and not await self.quota.take("session"):
            per_min = round(bucket_limits(self.quota.key, "session")[0] * 60)
            await self.error(
                "rate_limited",
                f"{event.type}: too many session events for this key (at most {per_min} a "
                "minute); this one was not processed",
                retryable=True,
            )
            return
        if isinstance(event, SessionStart):
            await self.start(event)
            return
        if self.conversation is None:  # clients may skip session.start: defaults apply
            if not await self.start(SessionStart(type="session.start")):
                return
        assert self.conversation is not None
        if isinstance(event, UserText):
            try:
                self.conversation.submit_text(event.text, event.explain)
            except InboxFull as exc:
                await self.error("queue_full", str(exc), retryable=True)
        elif isinstance(event, ResponseCancel):
            if not self.conversation.cancel():
                await self.error("no_active_response", "there is no reply being generated to cancel")
        elif isinstance(event, ResponseAudioPlayed):
            if not await self.conversation.audio_played(event.response_id, event.ms, event.interrupted):
                await self.error("unknown_response", f"{event.response_id!r} is not this session's last spoken reply")
        elif isinstance(event, ControlsOverride):
            await self.conversation.override(dict(event.controls))
        elif isinstance(event, (AudioFrame, UserAudio)):
            await self.audio(event)
        elif isinstance(event, UserAudioEnd):
            if not self.voice_consent:
                await self.error(
                    "consent_required", "audio needs consent: send session.start with consent.voice = true"
                )
            elif self.conversation.voice is None:
                await self.error("no_audio", "user.audio.end ends an utterance, but no audio has been sent")
            else:
                self.conversation.end_of_utterance()
        elif isinstance(event, UserImage):
            await self.image(event)
        elif isinstance(event, ToolsUpdate):
            try:
                self.conversation.tools = tool_use(event.tools, event.tool_choice)
            except ValueError as exc:
                await self.error("invalid_tools", f"tools.update: {exc}")
                return
            if event.tool_timeout_s is not None:
                self.conversation.tool_timeout_s = event.tool_timeout_s
        elif isinstance(event, ToolResultEvent):
            await self.tool_result(event)

    async def tool_result(self, event: ToolResultEvent) -> None:
        assert self.conversation is not None
        try:
            self.conversation.tool_result(event.call_id, event.output)
        except UnknownCall:
            waiting = list(self.conversation.waiting_calls)
            await self.error(
                "unknown_call",
                f"tool.result: no reply waits on call {event.call_id[:128]!r} "
                + (f"(the calls waiting: {waiting})" if waiting else "(no reply waits on a tool call)"),
            )
        except InboxFull as exc:
            await self.error("queue_full", str(exc), retryable=True)

    async def image(self, event: UserImage) -> None:
        assert self.conversation is not None
        if not self.face_consent:
            await self.error(
                "consent_required", "camera frames need consent: send session.start with consent.face = true"
            )
            return
        if not self.agent.face_enabled:
            await self.error("face_unavailable", "face input is not enabled on this server")
            return
        try:
            data = base64.b64decode(event.image, validate=True)
        except binascii.Error as exc:
            await self.error("invalid_image", f"user.image.image is not valid base64: {exc}")
            return
        if len(data) > MAX_IMAGE_BYTES:
            await self.error("image_too_large", f"an image may be at most {MAX_IMAGE_BYTES} bytes; got {len(data)}")
            return
        FRAMES.labels("face").inc()
        try:
            self.conversation.submit_image(data, event.explain)
        except ImageBackpressure as exc:
            await self.error("image_rate_limited", str(exc), retryable=True)
        except FaceUnavailable as exc:
            await self.error("face_unavailable", str(exc))

    async def audio(self, event: AudioFrame | UserAudio) -> None:
        assert self.conversation is not None
        if not self.voice_consent:
            await self.error("consent_required", "audio needs consent: send session.start with consent.voice = true")
            return
        try:
            data = event.data if isinstance(event, AudioFrame) else base64.b64decode(event.audio, validate=True)
            self.conversation.submit_audio(data)
        except (binascii.Error, InvalidAudio) as exc:
            await self.error("invalid_audio", f"audio rejected: {exc}")
        except AudioBackpressure as exc:
            await self.error("audio_overflow", str(exc), retryable=True)
        except VoiceUnavailable as exc:
            await self.error("voice_unavailable", str(exc))

    async def taken_over(self) -> None:
        """Another connection resumed this session: say so, and close (the conversation is already closed)."""
        self.conversation = None
        await self.error("session_taken_over", "this session was resumed on another connection; this one is closed")
        try:
            await self.ws.close(code=4409)
        except RuntimeError:
            pass

    async def start(self, event: SessionStart) -> bool:
        if self.conversation is not None:
            await self.error(
                "session_already_started", f"this connection already runs session {self.conversation.record.id}"
            )
            return False
        guard, key = self.guard, self.key
        user_id, unverified = (
            guard.verified_user(key, event.user_id, event.user_token) if guard else (event.user_id, False)
        )
        try:
            tools = tool_use(event.tools, event.tool_choice)
        except ValueError as exc:
            await self.error("invalid_tools", f"session.start: {exc}")
            return False
        if (opened := await self._converse(event, user_id)) is None:
            return False
        conversation, resumed = opened
        conversation.tools = tools
        if event.tool_timeout_s is not None:
            conversation.tool_timeout_s = event.tool_timeout_s
        self.conversation, self.voice_consent, self.face_consent = conversation, event.consent.voice, event.consent.face
        token = guard.resume_token(self.tenant, conversation.record.id) if guard else None
        await self.emit(conversation.started(resumed, resume_token=token))
        if unverified:
            await self.error(
                "user_not_verified",
                "a publishable key carries a user across sessions only with a valid "
                "user_token (signed by your backend with its secret key); this session is anonymous",
            )
        if event.voice_reply and not conversation.voice_reply:
            await self.error(
                "voice_reply_unavailable",
                "spoken replies are not enabled on this server (PERSONA_TTS_ENABLED); replies come as text only",
            )
        return True

    async def _converse(self, event: SessionStart, user_id: str | None) -> tuple[Conversation, bool] | None:
        """The session started or resumed (True) as a live conversation; None when it could not be (the client was
        told why)."""
        guard = self.guard
        try:
            if (
                event.resume
                and guard is not None
                and not guard.may_resume(self.key, self.tenant, event.resume, event.resume_token)
            ):
                raise UnknownSession(event.resume)  # a publishable key without the resume token: as if none existed
            record, resumed = await self.agent.start_session(event.profile, user_id, event.resume, self.tenant)
            admit = self.quota.take if self.quota is not None else None
            conversation = self.agent.converse(
                record, self.emit, self.taken_over, locale=event.locale, admit=admit, voice_reply=event.voice_reply
            )
            return conversation, resumed
        except UnknownProfile as exc:
            await self.error("unknown_profile", str(exc))
        except UnknownSession:
            await self.error("unknown_session", f"no stored session {event.resume!r} to resume")
        except SessionInUse:
            await self.error(
                "session_in_use",
                f"session {event.resume!r} is live on another connection that did not "
                "let go in time, or is being resumed at this same moment (one writer per session)",
                retryable=True,
            )
        return None
