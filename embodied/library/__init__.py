"""The skill library: storage (SQLite + embeddings), retrieval, abstraction of plans into skill code, the
restricted executor that runs it, and import/export. Growing and verifying it with episodes is the runtime's
job (`embodied.runtime.learn`, `embodied.runtime.verify`)."""
