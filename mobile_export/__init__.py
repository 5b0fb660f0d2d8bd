"""On-device export of gemma-kit models (LiteRT, .litertlm, .task)."""
