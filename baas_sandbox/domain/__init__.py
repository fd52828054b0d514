"""The business rules of the sandbox, free of HTTP and storage."""
