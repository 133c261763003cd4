"""``s3csi doctor``: check, step by step, what a mount of one volume needs (docs/observability.md)."""
