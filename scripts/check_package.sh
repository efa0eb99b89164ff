#!/usr/bin/env bash
# Install the packaged pipeline into a brand-new virtual environment and load it by name in
# a fresh process, with no homs_ner import: the check that other code can use the model.
#
#   scripts/check_package.sh [PACKAGE_NAME] [VERSION]      (defaults: ar_homs_ner_trf 0.1.0)
#
# The environment gets torch 2.13.0 (the CPU build on local disk), this project (its
# components are registered through entry points) and the package's sdist from
# `spacy project run package`.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-ar_homs_ner_trf} version=${2:-0.1.0}
sdist=$(ls packages/"$name-$version"/dist/"$name-$version".tar.gz)
venv=$(mktemp -d "${TMPDIR:-/tmp}/homs-ner-pkg.XXXXXX")
trap 'rm -rf "$venv"' EXIT
python3.11 -m venv "$venv"
pip="$venv/bin/pip --disable-pip-version-check -q"
$pip install torch==2.13.0
$pip install . "$sdist"
cd "$venv"  # away from the source tree, so only installed code is importable
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$venv/bin/python" - "$name" <<'PY'
import json, sys
import spacy

nlp = spacy.load(sys.argv[1])
text = "ونص الاتفاق على خروج مقاتلي المعارضة من حي الوعر في مدينة حمص إلى جرابلس برعاية روسية."
doc = nlp(text)
print(json.dumps({
    "pipeline": nlp.pipe_names,
    "entities": [(e.text, e.label_) for e in doc.ents],
    "clauses": [(c.text, c.label_) for c in doc.spans["clauses"]],
    "relations": len(doc._.relations),
}, ensure_ascii=False))
assert nlp.pipe_names[-1] == "relation_extractor" and isinstance(doc._.relations, list)
PY
echo "OK: $name $version installs into a fresh virtual environment and loads with spacy.load"
