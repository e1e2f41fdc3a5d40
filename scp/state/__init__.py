"""Persistence in PostgreSQL (ARCHITECTURE §2, §5): everything that must outlive a dialogue.

``db`` the asyncpg pool and the embedded server, ``migrate`` the numbered migrations
(``migrations/NNNN_*.sql``) and the schema version, the stores with their named SQL
(``calls_store``, ``notify_store``, ``outbox``), ``scratch`` the scratch copy of the database
that replay and the simulator run on. No flows here: what loads, decides and writes is
:mod:`scp.flows`; the values and rules are :mod:`scp.service`.
"""
