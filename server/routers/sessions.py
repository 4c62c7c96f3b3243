"""What we store, for its owner: export and erase a session or a user (a secret key of the owning tenant)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from agent import Agent
from agent.sessions import SessionExport, UserExport
from server.deps import AUTH, ERR, agent, require_key

router = APIRouter(prefix="/v1", responses={**AUTH, 404: ERR})


class Erased(BaseModel):
    erased: bool = True
    sessions: int  # sessions erased


@router.get("/sessions/{session_id}", response_model=SessionExport)
async def get_session(session_id: str, tenant: str = Depends(require_key), a: Agent = Depends(agent)) -> SessionExport:
    """One stored session of the caller's tenant: messages, persona, overrides, summary (read-only)."""
    if (data := await a.export_session(session_id, tenant)) is None:
        raise HTTPException(status_code=404, detail="no such session")
    return data


@router.delete("/sessions/{session_id}", response_model=Erased)
async def delete_session(session_id: str, tenant: str = Depends(require_key), a: Agent = Depends(agent)) -> Erased:
    """Erase one session of the caller's tenant: its messages, persona and overrides."""
    if not await a.delete_session(session_id, tenant):
        raise HTTPException(status_code=404, detail="no such session")
    return Erased(sessions=1)


@router.delete("/users/{user_id}", response_model=Erased)
async def delete_user(user_id: str, tenant: str = Depends(require_key), a: Agent = Depends(agent)) -> Erased:
    """Erase a user of the caller's tenant: their persona and every session with their user_id."""
    if (n := await a.delete_user(user_id, tenant)) < 0:
        raise HTTPException(status_code=404, detail="no such user")
    return Erased(sessions=n)


@router.get("/users/{user_id}/export", response_model=UserExport)
async def export_user(user_id: str, tenant: str = Depends(require_key), a: Agent = Depends(agent)) -> UserExport:
    """Everything stored about a user of the caller's tenant, as JSON."""
    if (data := await a.export_user(user_id, tenant)) is None:
        raise HTTPException(status_code=404, detail="no such user")
    return data
