"""HTTP delivery of integration events: webhooks, Slack, Teams (the only code that speaks HTTP out)."""
