"""The second opinion's edge: the only code that speaks to an OpenAI-compatible chat endpoint."""
