"""`python -m homs_ner ...`: the command line with the interpreter that runs it (as
`spacy project run` does, so project.yml works without an activated venv)."""

from homs_ner.cli import main

main()
