"""Alembic environment: runs the migrations on the engine ``drscreen.serve.database`` passes in."""

from alembic import context

from drscreen.serve.tables import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
