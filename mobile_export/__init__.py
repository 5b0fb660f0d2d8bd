"""On-device export of gemma-kit models (LiteRT, .litertlm, .task): built under issue 6."""
