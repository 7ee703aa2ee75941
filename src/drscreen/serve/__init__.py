"""``drscreen serve``: a web app and JSON API for a screening site.

Pages and API (``pages.py``, ``api.py``) on FastAPI; users, sessions, tokens, photographs,
results and the job queue in a SQL database through SQLAlchemy 2 with Alembic migrations
(``tables.py``, ``database.py``, ``migrations/``; SQLite by default, PostgreSQL at clinic
scale); files on disk under content-addressed names (``blobs.py``); a bounded pool of worker
threads that claims jobs from the database and runs the same ``Screener`` as ``drscreen
screen`` (``queue.py``, ``work.py``). No model logic lives here. Guide: docs/serve.md.
"""

from drscreen.serve.app import create_app
from drscreen.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
