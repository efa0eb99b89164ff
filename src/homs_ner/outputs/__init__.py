"""Stage 5, outputs: the Python API (``api``), agreements as structured data
(``extraction``), right-to-left HTML views (``visualize``), the corpus as a Hugging Face
dataset (``dataset``), and the articles they read (``articles``)."""
