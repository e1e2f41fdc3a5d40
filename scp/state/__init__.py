"""State in PostgreSQL (ARCHITECTURE §2, §5): everything that must outlive a dialogue.

``db`` pool + embedded server, ``migrate`` numbered migrations (``migrations/NNNN_*.sql``),
``pin`` PIN hashing, ``msisdn`` provisioning number rule, ``importer`` OSS bulk load,
``outbox`` the SMS outbox store, ``provisioning`` the provisioning functions every channel
calls (their values and rules: ``scp.service.provisioning``).
"""
