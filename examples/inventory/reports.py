"""Stock reports through SQLAlchemy: an engine and a session factory, created once per process."""

from __future__ import annotations

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from .settings import REPORTS_URL

engine = create_engine(REPORTS_URL, pool_size=5, max_overflow=0)
Session = sessionmaker(bind=engine)


class Base(DeclarativeBase):
    pass


class StockLevel(Base):
    __tablename__ = "stock_levels"

    sku: Mapped[str] = mapped_column(primary_key=True)
    on_hand: Mapped[int]
    reorder_at: Mapped[int]


def low_stock() -> list[StockLevel]:
    # LEAK: the session is never closed, so the connection it checked out goes back to the
    # pool (5 connections, no overflow) only when the garbage collector gets to the session
    session = Session()
    return list(session.scalars(select(StockLevel).where(StockLevel.on_hand < StockLevel.reorder_at)))


def reorder_list() -> list[str]:
    # correct: a Session's "with" closes it and returns its connection to the pool
    with Session() as session:
        rows = session.scalars(select(StockLevel.sku).where(StockLevel.on_hand == 0))
        return list(rows)


def stock_value() -> int:
    # correct: a Connection's "with" closes it (returns it to the engine's pool)
    with engine.connect() as conn:
        return conn.execute(text("SELECT sum(on_hand * unit_cents) FROM stock_levels")).scalar_one()
