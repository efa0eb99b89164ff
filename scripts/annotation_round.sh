#!/usr/bin/env bash
# Replay an annotation round through the real tool path: start a fresh local Doccano, push the
# schema, guidelines and paragraphs, enter each annotator's text-anchored work as that
# annotator (through the REST API), and pull every annotator's work back with `pull`.
#
#   scripts/annotation_round.sh PROJECT ANCHORED_DIR OUT_DIR [ARTICLE_ID ...]
#
# ANCHORED_DIR holds one folder per annotator account (annotations/anchored/<annotator>/*.jsonl).
# The pulled exports (raw zip + <annotator>.jsonl) land in OUT_DIR.
set -euo pipefail
project=$1 anchored=$2 out=$3
shift 3
articles=()
for a in "$@"; do articles+=(--article "$a"); done
port=${DOCCANO_PORT:-8765}
url="http://127.0.0.1:$port"
home=$(mktemp -d "${TMPDIR:-/tmp}/homs-ner-round.XXXXXX")
export DOCCANO_ANNOTATOR_PASSWORD=${DOCCANO_ANNOTATOR_PASSWORD:-Homs-Round-2014!}

homs-ner doccano serve --home "$home" --port "$port" > "$home/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$home"' EXIT
for _ in $(seq 1 240); do
  curl -fs "$url/v1/health/" > /dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$home/serve.log"; exit 1; }
  sleep 0.5
done

homs-ner doccano push --project "$project" --url "$url" "${articles[@]}"
for dir in "$anchored"/*/; do
  annotator=$(basename "$dir")
  homs-ner doccano annotate "$dir"*.jsonl --as "$annotator" --project "$project" --url "$url"
done
homs-ner doccano pull --project "$project" --url "$url" --out "$out"
