"""The web view: a status page, each rule's hits (HTML and Atom) and a rule preview.

Served by the local listener that ``metrics:`` opens (``monitor.metrics``), read-only: every
endpoint answers GET (and HEAD) and none changes state. Pages are rendered on the server from
Jinja2 templates with autoescaping, and work without JavaScript. ``app`` holds the routes,
``views`` what each page shows, ``backtest`` the preview's search (shared with the
``news-monitor backtest`` command).
"""
