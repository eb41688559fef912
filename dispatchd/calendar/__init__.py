"""The only code that speaks CalDAV: free/busy, events put and withdrawn (``caldav`` library)."""
