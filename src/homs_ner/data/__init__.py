"""Stage 1, the data: the corpus of articles and the paragraphs annotators label
(``corpus``), the label schema (``schema``), the Arabic tokenizer (``tokenizer``),
annotation records and their offsets (``records``), validation against schema and tokens
(``validation``), conversion to spaCy docs and Prodigy tasks (``conversion``), reading,
merging and converting annotation files (``annotations``), corpus statistics (``stats``)
and file helpers (``io``)."""
