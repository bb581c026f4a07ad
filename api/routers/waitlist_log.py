"""The waitlist's public transparency log over HTTP (docs/transparency-log.md): the signed checkpoint (a C2SP
signed note), the append-only history of checkpoints, entries, inclusion and consistency proofs, the verifier
keys, witnesses' cosignatures, and a parent's own proofs. Thin handlers over ``geo.admission.tlog_store``."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.security import authorize
from geo.admission import tlog_store
from geo.admission.tlog import MAX_LOG_SIZE
from geo.auth.policy import Action
from geo.errors import InvalidQuery, NotFound

PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"description": "An index or range the log does not have, or a refused cosignature (problem+json)"},
    404: {"description": "No such checkpoint or tree size yet (problem+json, RFC 9457)"},
}
router = APIRouter(prefix="/waitlist/log", tags=["waitlist log"], responses=PROBLEMS, route_class=WriteRoute)
MAX_ENTRIES = 1000
Size = Annotated[int, Query(ge=0, le=MAX_LOG_SIZE)]
CACHE = {"Cache-Control": "public, max-age=5"}
FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}


def _b64(proof: list[bytes]) -> list[str]:
    return [base64.b64encode(p).decode() for p in proof]


class CosignaturesIn(BaseModel):
    """A witness's cosignature lines (``— <name> <base64>``, cosignature/v1) of the checkpoint of ``size``."""

    size: int = Field(ge=0, le=MAX_LOG_SIZE)
    cosignatures: list[str] = Field(min_length=1, max_length=16)


@router.get("/checkpoint", summary="The latest signed checkpoint (C2SP tlog-checkpoint in a signed note)",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def checkpoint(tx: WriteTx, settings: SettingsDep) -> Response:
    """Integrates what was written since, so it is never behind a committed write for long; cosignatures of
    configured witnesses follow the log's signature lines."""
    latest = tlog_store.publish(tx.connection(), settings, wait=False)
    if latest is None:
        raise NotFound("no checkpoint was published yet")
    return Response(latest.note, media_type="text/plain; charset=utf-8", headers=CACHE)


@router.get("/checkpoints", summary="The published checkpoints in order of size (append-only history)")
def checkpoints(session: SessionDep, after: Annotated[int, Query(ge=-1, le=MAX_LOG_SIZE)] = -1,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Page on with ``after`` = the last size seen."""
    return [c.as_dict() for c in tlog_store.checkpoints(session.connection(), after=after, limit=limit)]


@router.get("/keys", summary="The log's verifier keys and the witnesses' cosignature keys")
def keys(settings: SettingsDep) -> dict[str, Any]:
    """``name+keyid+base64`` (C2SP signed-note verifier keys); during a rotation several log keys are listed and
    every checkpoint carries a signature of each."""
    return {"origin": settings.log.origin, "log": tlog_store.verifier_keys(settings),
            "witnesses": [w.text() for w in tlog_store.witness_verifiers(settings)]}


@router.get("/entries", summary="Log entries [start, end): centre, chain seq and the event")
def entries(session: SessionDep, response: Response, start: Size, end: Size) -> list[dict[str, Any]]:
    """An entry's bytes are the canonical JSON of ``{"centre", "seq", "event"}``; its leaf hash is
    SHA-256(0x00 || bytes). At most 1000 per call."""
    if not start <= end <= start + MAX_ENTRIES:
        raise InvalidQuery(f"end must lie between start and start + {MAX_ENTRIES}", param="end", value=end)
    conn = session.connection()
    found = tlog_store.entries(conn, start=start, end=end)
    if len(found) == end - start:  # not "immutable": a cache must not hide an edited entry from watchers
        response.headers.update({"Cache-Control": "public, max-age=60"})
    return found


@router.get("/proof/inclusion", summary="Inclusion proof of entry `index` in the tree of `size` entries")
def inclusion(session: SessionDep, response: Response, index: Size, size: Size) -> dict[str, Any]:
    """RFC 9162 §2.1.3 audit path, base64 hashes."""
    proof = tlog_store.inclusion_proof(session.connection(), index=index, size=size)
    response.headers.update(FOREVER)
    return {"index": index, "size": size, "proof": _b64(proof)}


@router.get("/proof/consistency", summary="Consistency proof between the trees of `old` and `new` entries")
def consistency(session: SessionDep, response: Response, old: Size, new: Size) -> dict[str, Any]:
    """RFC 9162 §2.1.4 proof, base64 hashes: the tree of ``new`` entries extends the tree of ``old``."""
    proof = tlog_store.consistency_proof(session.connection(), old_size=old, new_size=new)
    response.headers.update(FOREVER)
    return {"old": old, "new": new, "proof": _b64(proof)}


@router.post("/cosignatures", summary="Add a witness's cosignature of a published checkpoint")
def cosign(body: CosignaturesIn, tx: WriteTx, settings: SettingsDep) -> dict[str, Any]:
    """Only from witnesses configured in DOLBOM_LOG_WITNESS_KEYS, verified before it is stored; the checkpoint
    is then served with it."""
    return tlog_store.add_cosignature(tx.connection(), settings, size=body.size,
                                      lines=body.cosignatures).as_dict()


@router.get("/mine", summary="Inclusion proofs of my entries' events against the latest checkpoint",
            responses={401: {"description": "Not authenticated (problem+json, RFC 9457)"},
                       403: {"description": "Not a parent's account (problem+json, RFC 9457)"}})
def mine(user: CurrentUser, tx: WriteTx, settings: SettingsDep) -> dict[str, Any]:
    """The checkpoint note, and for each event about my entries its log index, its bytes' parts and its proof:
    the parent's device checks them (api/static/tlog.js) instead of trusting this server's word."""
    authorize(user, Action.apply_waitlist)
    conn = tx.connection()
    tlog_store.publish(conn, settings)
    return tlog_store.parent_proofs(conn, parent_user_id=user.user_id)
