"""The web side: an edge like IMAP and SMTP. It parses HTTP, calls the same flows the email
commands call and renders pages; flows and domain never import it.

``app.create_app`` builds the Starlette app around the daemon's dependencies, ``server`` runs
it under uvicorn (alone: ``dispatchd web``; in the daemon: ``[web] listen``), ``security`` adds
the headers every response carries and the CSRF check every POST goes through, ``pages``
renders ``templates/web/*.html.j2`` (autoescaped).
"""
