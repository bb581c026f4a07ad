"""Dependency aliases: ``SessionDep`` (a SQLAlchemy session per request) and ``SettingsDep``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geo.settings import Settings


def get_engine(request: Request) -> Engine:
    """The engine created by the app's lifespan."""
    return request.app.state.engine  # type: ignore[no-any-return]


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """A read-mostly session per request, closed afterwards."""
    with Session(get_engine(request)) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
