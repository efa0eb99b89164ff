"""Stage 2, annotation in Doccano: the local server (``server``, ``server_env``), a typed
REST client (``client`` over ``http``, answers in ``types``), pushing the schema and
paragraphs, pulling annotations, entering work and pre-annotations (``sync``), and
text-anchored annotation files (``anchored``)."""
