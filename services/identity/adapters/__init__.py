"""Where the identity service meets its stores: PostgreSQL (``postgres``) and memory (``memory``)."""
