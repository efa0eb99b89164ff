#!/usr/bin/env bash
# Replay an annotation round through the real tool path: start a fresh local Doccano, push the
# schema, guidelines and the paragraphs of the articles the annotators worked on, enter each
# annotator's text-anchored work as that annotator (through the REST API), and pull every
# annotator's work back with `pull`.
#
#   scripts/annotation_round.sh PROJECT OUT_DIR ANNOTATOR_DIR [ANNOTATOR_DIR ...]
#
# Each ANNOTATOR_DIR is annotations/anchored/<annotator account>/ holding <article_id>.jsonl
# files. The pulled export (raw zip under OUT_DIR/exports/ and <annotator>.jsonl) lands in OUT_DIR.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,10p' "$0"; exit 2; }
project=$1 out=$2
shift 2
dirs=("$@")
articles=()
for a in $(for d in "${dirs[@]}"; do ls "$d"/*.jsonl; done | xargs -n1 basename | sed 's/\.jsonl$//' | sort -u); do
  articles+=(--article "$a")
done
port=${DOCCANO_PORT:-8765}
url="http://127.0.0.1:$port"
home=$(mktemp -d "${TMPDIR:-/tmp}/homs-ner-round.XXXXXX")
export DOCCANO_ANNOTATOR_PASSWORD=${DOCCANO_ANNOTATOR_PASSWORD:-Homs-Round-2014!}
# The one admin password variable: serve creates the admin with it, push/annotate/pull log in with it.
export DOCCANO_ADMIN_PASSWORD=${DOCCANO_ADMIN_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')}

homs-ner doccano serve --home "$home" --port "$port" > "$home/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$home"' EXIT
for _ in $(seq 1 240); do
  curl -fs "$url/v1/health/" > /dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$home/serve.log"; exit 1; }
  sleep 0.5
done

# The rounds were made before page furniture was held back: push every paragraph to replay them.
homs-ner doccano push --project "$project" --url "$url" --include-boilerplate "${articles[@]}"
for dir in "${dirs[@]}"; do
  annotator=$(basename "$dir")
  homs-ner doccano annotate "$dir"/*.jsonl --as "$annotator" --project "$project" --url "$url"
done
homs-ner doccano pull --project "$project" --url "$url" --out "$out"
