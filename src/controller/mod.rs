//! The reconcile pipeline: resolve → pull → (repository) → apply → prune → report.
